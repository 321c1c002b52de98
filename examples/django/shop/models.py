from django.db import models


class Order(models.Model):
    item = models.CharField(max_length=100)
    processed = models.BooleanField(default=False)
    #: the pid of the worker process that processed the order
    processed_by = models.IntegerField(null=True)

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.item})"
