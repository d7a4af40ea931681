"""Portal forms: the worklist filters, the upload's patient fields, the radiologist's review."""
from __future__ import annotations

from django import forms

from scans import services
from scans.models.choices import Label, ReportStatus


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
    """Rendered only: which classifier analyses the new studies (posted as ``model``).

    The empty value is the configured default, so a study stores "" unless someone chose.
    """

    model = forms.ChoiceField(label="AI model", required=False,
                              help_text="Which classifier analyses these images. Most accurate first.",
                              widget=forms.Select(attrs={"aria-describedby": "id_model-help"}))

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
