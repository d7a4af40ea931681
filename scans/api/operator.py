"""GET /api/v1/operator/queue/: the operator's view as JSON, for tooling (operators and admins).

The same rows, lanes and workers as the portal page (scans.views.operator.queue_state);
ids, stages, counts and times only, no patient data.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from scans.api.permissions import IsOperator


class QueueRowSerializer(serializers.Serializer):
    study_id = serializers.IntegerField()
    priority = serializers.CharField()
    status = serializers.CharField()
    stage = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_event_at = serializers.DateTimeField(allow_null=True)
    last_event = serializers.CharField(help_text="kind of the last pipeline event, empty when none")
    waiting_s = serializers.FloatField(help_text="seconds since the upload")
    idle_s = serializers.FloatField(help_text="seconds since the last pipeline event (or the upload)")
    attempts = serializers.IntegerField(help_text="the most any of its scans was tried")
    worker = serializers.CharField(help_text="the worker holding it, else the last that wrote an event")
    last_error = serializers.CharField()
    stuck = serializers.BooleanField(help_text="in flight with no event for BRAINAI_STUCK_AFTER_MIN minutes")
    n_scans = serializers.IntegerField()
    n_analyzed = serializers.IntegerField()
    n_failed = serializers.IntegerField()
    n_pending = serializers.IntegerField()


class OperatorQueueSerializer(serializers.Serializer):
    broker_up = serializers.BooleanField()
    lanes = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                  help_text="messages waiting per gpu lane; null when the broker is unreachable")
    workers = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                    help_text="workers that answered a ping; null when the broker is unreachable")
    stuck_after_min = serializers.FloatField()
    studies = QueueRowSerializer(many=True)


class OperatorQueueView(APIView):
    """Every study in flight or failed, the gpu lanes and the workers alive."""

    permission_classes = [IsOperator]

    @extend_schema(responses={200: OperatorQueueSerializer}, operation_id="operator_queue")
    def get(self, request):
        from django.conf import settings

        from scans.views.operator import queue_state

        state = queue_state()
        now = state["now"]
        studies = [{**vars(r), "waiting_s": r.waiting_s(now), "idle_s": r.idle_s(now)} for r in state["rows"]]
        return Response(OperatorQueueSerializer({
            "broker_up": state["broker_up"], "lanes": state["lanes"], "workers": state["workers"],
            "stuck_after_min": settings.BRAINAI_STUCK_AFTER_MIN, "studies": studies,
        }).data)
