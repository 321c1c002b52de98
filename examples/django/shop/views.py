from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shop.models import Order
from shop.tasks import process_order


def place_order(item: str, *, fail: bool = False) -> tuple[int, str]:
    """Create an order and enqueue its processing, both in one transaction: the job is sent only once
    the row is committed, and never if the transaction rolls back (``fail=True`` rolls it back)."""
    with transaction.atomic():
        order = Order.objects.create(item=item)
        job_id = process_order.delay_on_commit(order.pk)
        if fail:
            raise RuntimeError(f"order {order.pk} rolled back")
    return order.pk, job_id


@csrf_exempt
@require_POST
def create_order(request: HttpRequest) -> JsonResponse:
    order_id, job_id = place_order(request.POST.get("item", "book"))
    return JsonResponse({"order": order_id, "job": job_id}, status=201)
