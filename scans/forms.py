"""Portal forms: the worklist filters, the upload's patient fields, the radiologist's review."""
from __future__ import annotations

from django import forms

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
