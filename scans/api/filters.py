import django_filters

from scans.models import Label, Priority, Report, ReportStatus, Study, StudyStatus


class ReportFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReportStatus.choices)
    label = django_filters.ChoiceFilter(choices=Label.choices)
    patient_id = django_filters.CharFilter(field_name="study__patient__patient_id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte",
                                             help_text="ISO date or date-time; reports created since then")

    class Meta:
        model = Report
        fields = ["status", "label", "patient_id", "since"]


class StudyFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=StudyStatus.choices)
    patient_id = django_filters.CharFilter(field_name="patient__patient_id")
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    priority = django_filters.ChoiceFilter(choices=Priority.choices)  # the gpu lane (scans.services.priority)

    class Meta:
        model = Study
        fields = ["status", "patient_id", "since", "priority"]
