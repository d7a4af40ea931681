"""Portal forms: the worklist filters, the upload's patient fields, the radiologist's review."""
from __future__ import annotations

from django import forms

from scans import services
from scans.models.choices import Label, Priority, ReportStatus, Verdict


class UploadFieldsForm(forms.Form):
    """Rendered only: the browser posts these fields with the files to the upload API."""

    patient_id = forms.CharField(label="Patient ID", max_length=64, required=False,
                                 help_text="The clinic's patient number.")
    patient_name = forms.CharField(label="Patient name", max_length=200, required=False)
    patient_birth_date = forms.DateField(label="Birth date", required=False,
                                         widget=forms.DateInput(attrs={"type": "date"}))
    patient_sex = forms.ChoiceField(label="Sex", required=False,
                                    choices=[("", "—"), ("F", "Female"), ("M", "Male"), ("O", "Other")])
    study_description = forms.CharField(label="Study description", max_length=200, required=False,
                                        help_text="For example \"MRI brain T1 post-contrast\".")
    study_date = forms.DateField(label="Study date", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class UploadModelForm(forms.Form):
    """Rendered only: which classifier analyses the new studies (posted as ``model``), and
    their lane on the gpu queue (posted as ``priority``).

    The empty value is the configured default, so a study stores "" unless someone chose.
    """

    model = forms.ChoiceField(label="AI model", required=False,
                              help_text="Which classifier analyses these images. Most accurate first.",
                              widget=forms.Select(attrs={"aria-describedby": "id_model-help"}))
    # Posted as ``priority`` (scans.services.priority): empty = the configured rules, else routine.
    priority = forms.ChoiceField(label="Priority", required=False,
                                 choices=[("", "Automatic (routine unless a rule says otherwise)"), *Priority.choices],
                                 help_text="Urgent studies are analysed before routine ones; research work may "
                                           "wait for the off-peak hours.",
                                 widget=forms.Select(attrs={"aria-describedby": "id_priority-help"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names, default = services.available_models(), services.default_model()
        choices = [("", f"{default} (default)")] if default else []
        choices += [(name, name) for name in names if name != default]
        self.fields["model"].choices = choices


class WorklistFilterForm(forms.Form):
    ALL = "all"
    STATUS_VALUES = ReportStatus.choices

    status = forms.ChoiceField(label="Status", required=False,
                               choices=[("", "To read"), (ALL, "Any status"),
                                        *ReportStatus.choices])
    label = forms.ChoiceField(label="AI label", required=False, choices=[("", "Any label"), *Label.choices])
    patient = forms.CharField(label="Patient", required=False, max_length=200,
                              widget=forms.TextInput(attrs={"type": "search", "placeholder": "ID or name"}))
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class ReviewForm(forms.Form):
    findings = forms.CharField(label="Findings", required=False, max_length=20000,
                               widget=forms.Textarea(attrs={"rows": 6}))
    impression = forms.CharField(label="Impression", required=False, max_length=20000,
                                 widget=forms.Textarea(attrs={"rows": 4}))


class SignOffForm(ReviewForm):
    """The review form on a report awaiting review: the text and the structured verdict.

    Both buttons post it: "Save draft" keeps the verdict as a draft, "Sign report" signs
    it (scans.services.sign_report). The verdict is optional; the correct label is asked
    for only with "disagrees" (scans.services.check_verdict).
    """

    verdict = forms.ChoiceField(label="Your verdict on the AI finding", required=False,
                                choices=[("", "Not recorded"), *Verdict.choices], widget=forms.RadioSelect)
    verdict_label = forms.ChoiceField(label="Correct label", required=False,
                                      choices=[("", "—"), *[(v, Label(v).label) for v in services.VERDICT_LABELS]],
                                      help_text="Only when you disagree: what the image shows.")

    def __init__(self, *args, ai_label: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ai_label = ai_label

    def clean(self):
        data = super().clean()
        try:
            data["verdict"], data["verdict_label"] = services.check_verdict(
                data.get("verdict"), data.get("verdict_label"), ai_label=self.ai_label)
        except services.InvalidVerdict as exc:
            self.add_error(exc.field, str(exc))
        return data


class AnalyticsFilterForm(forms.Form):
    """The reviewer analytics' date range: the current signature's day, both ends included."""

    date_from = forms.DateField(label="Signed from", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="Signed to", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "the end of the range is before its start")
        return data
