"""The FastAPI application of docs/fastapi.md, which tests/contrib/test_fastapi.py runs (the doc shows this
file from its first import to the end). No ``from __future__ import annotations``: FastAPI reads the
endpoint's annotations at definition."""

from typing import Annotated

from fastapi import Depends, FastAPI

from resq import Resq
from resq.contrib.fastapi import dependency, lifespan, mount_dashboard

app = Resq()  # RESQ_REDIS_URL


@app.task
def send_receipt(order_id: int) -> str:
    return f"receipt {order_id}"


api = FastAPI(lifespan=lifespan(app))
mount_dashboard(api, app, "/resq", auth=("admin", "s3cret"))  # https://…/resq/


@api.post("/orders/{order_id}")
async def order(order_id: int, resq: Annotated[Resq, Depends(dependency(app))]) -> dict[str, str]:
    job = await send_receipt.adelay(order_id)
    return {"job": job.id}
