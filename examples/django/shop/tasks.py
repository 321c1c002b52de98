"""Imported by resq.contrib.django when Django starts (every installed app's ``tasks`` module)."""

import os

from resq.contrib.django import task
from shop.models import Order


@task(retries=3)
def process_order(order_id: int) -> str:
    """Mark the order processed: the row exists, since the job was enqueued after its commit."""
    order = Order.objects.get(pk=order_id)
    order.processed = True
    order.processed_by = os.getpid()
    order.save(update_fields=["processed", "processed_by"])
    return f"processed {order}"
