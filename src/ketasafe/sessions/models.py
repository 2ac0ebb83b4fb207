"""Treatment sessions: chairs, the session row and its transition history."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .state import Status

STATUS_CHOICES = [(s.value, s.value.replace("_", " ")) for s in Status]


class Chair(models.Model):
    """A treatment chair (bed). Monitors report it as PV1-3, or through their device id."""

    name = models.CharField(max_length=40, unique=True)  # as shown on the board, e.g. "Chair 1"
    bed_code = models.CharField(max_length=80, unique=True, help_text="PV1-3 as the monitor sends it")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TreatmentSession(models.Model):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="treatment_sessions")
    order = models.ForeignKey("protocols.TreatmentOrder", on_delete=models.PROTECT, related_name="sessions")
    session_number = models.PositiveSmallIntegerField()  # 1-based within the course
    chair = models.ForeignKey(Chair, null=True, blank=True, on_delete=models.PROTECT, related_name="sessions")
    scheduled_at = models.DateTimeField()
    # Assigned only by services._transition(); see state.TRANSITIONS.
    status = models.CharField(max_length=20, choices=STATUS_CHOICES, default=Status.SCHEDULED.value,
                              db_index=True)
    prescriber_on_site = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                           on_delete=models.PROTECT, related_name="+")
    checked_in_at = models.DateTimeField(null=True, blank=True)
    dosing_started_at = models.DateTimeField(null=True, blank=True)  # first device / infusion start
    discharged_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)  # discharged, cancelled or aborted
    # How a session ended when not discharged: cancelled (no drug), aborted (stopped for a
    # clinical reason) or "ama": the patient left against medical advice. AMA is the ABORTED
    # status with end_kind "ama" and a reason: it is never recorded as a discharge.
    end_kind = models.CharField(max_length=12, blank=True)
    end_reason = models.TextField(blank=True)
    # The pre-check results when they were passed (CheckResult dicts), kept for the record.
    precheck_results = models.JSONField(default=list, blank=True)
    # REMS Patient Monitoring Form (facts 1.9): submitted within 7 days of the session.
    pmf_submitted_at = models.DateTimeField(null=True, blank=True)
    pmf_submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="+")
    pmf_reference = models.CharField(max_length=80, blank=True)
    # Optimistic concurrency for forms: a stale form names the version it was built from.
    row_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["scheduled_at"]

    def __str__(self) -> str:
        return f"Session {self.session_number} of {self.patient} ({self.status})"


class SessionTransition(models.Model):
    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="transitions")
    from_status = models.CharField(max_length=20, choices=STATUS_CHOICES)
    to_status = models.CharField(max_length=20, choices=STATUS_CHOICES)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.TextField(blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"


class PregnancyTest(models.TextChoices):
    NOT_DONE = "", "not done"
    NEGATIVE = "negative", "negative"
    POSITIVE = "positive", "positive"


class Checklist(models.Model):
    """What the nurse confirms before dosing (None = not answered yet). One per session."""

    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="checklist")
    fasting_confirmed = models.BooleanField(null=True)  # esketamine: no food 2 h, liquids 30 min
    ride_home_arranged = models.BooleanField(null=True)
    pregnancy_test = models.CharField(max_length=10, choices=PregnancyTest.choices, blank=True)
    # REMS PMF concomitant medicines (facts 1.9, 5): True = taking, False = not, None = unanswered.
    benzodiazepines = models.BooleanField(null=True)
    nonbenzo_hypnotics = models.BooleanField(null=True)
    psychostimulants = models.BooleanField(null=True)
    maois = models.BooleanField(null=True)
    opioids = models.BooleanField(null=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+")
    updated_at = models.DateTimeField(null=True)

    REMS_FIELDS = ("benzodiazepines", "nonbenzo_hypnotics", "psychostimulants", "maois", "opioids")

    def __str__(self) -> str:
        return f"Checklist of session {self.session_id}"


class Override(models.Model):
    """A failed soft pre-check accepted by a prescriber (with a reason) and confirmed by a second
    clinician who re-authenticated. Hard checks have no override path at all."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="overrides")
    check_code = models.CharField(max_length=40)
    check_message = models.CharField(max_length=300)  # what the check said when overridden
    # What exactly was judged (CheckResult.basis, e.g. the BP reading and its time): the override
    # covers only a result with the same code, message and basis.
    check_basis = models.CharField(max_length=120, blank=True)
    reason = models.TextField()
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"Override of {self.check_code} in session {self.session_id}"


class Drug(models.TextChoices):
    ESKETAMINE = "esketamine", "esketamine nasal spray (SPRAVATO)"
    KETAMINE = "ketamine", "racemic ketamine IV"


class Administration(models.Model):
    """The administration record: what was given, computed (never typed), by and before whom."""

    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="administration")
    order = models.ForeignKey("protocols.TreatmentOrder", on_delete=models.PROTECT, related_name="+")
    drug = models.CharField(max_length=12, choices=Drug.choices)
    lot_number = models.CharField(max_length=40)
    concentration_mg_per_ml = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1)
    drug_volume_ml = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    final_volume_ml = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    rate_ml_per_h = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    duration_min = models.PositiveIntegerField(null=True, blank=True)
    devices_planned = models.PositiveSmallIntegerField(null=True, blank=True)
    minutes_between_devices = models.PositiveSmallIntegerField(null=True, blank=True)
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    weight_measured_on = models.DateField(null=True, blank=True)
    dose_computation = models.JSONField(default=dict)  # compute_dose(...).as_dict()
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    administering_nurse = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    observing_prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.drug} {self.dose_mg} mg, session {self.session_id}"


class DeviceDose(models.Model):
    """One esketamine nasal device (28 mg), at least minutes_between_devices after the last."""

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="devices")
    number = models.PositiveSmallIntegerField()
    given_at = models.DateTimeField()
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["administration", "number"], name="device_once")]

    def __str__(self) -> str:
        return f"device {self.number} at {self.given_at}"


class RateChange(models.Model):
    administration = models.ForeignKey(Administration, on_delete=models.PROTECT, related_name="rate_changes")
    at = models.DateTimeField()
    rate_ml_per_h = models.DecimalField(max_digits=7, decimal_places=1)
    reason = models.CharField(max_length=300)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.rate_ml_per_h} mL/h at {self.at}"


class MonitoringCheck(models.Model):
    """A scheduled (or extra) check: vitals go to the monitoring app; sedation and dissociation
    are stored here. ``code`` matches a scheduled check ("post-dose", "during-10", "extra")."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="checks")
    code = models.CharField(max_length=40)
    observed_at = models.DateTimeField()
    moaas = models.PositiveSmallIntegerField(null=True, blank=True)  # facts 4.9, 0-5
    dissociation_scale = models.CharField(max_length=10, blank=True)  # "cadss" / "cadss6"
    dissociation_answers = models.JSONField(default=list, blank=True)
    dissociation_total = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["observed_at", "id"]

    def __str__(self) -> str:
        return f"check {self.code} at {self.observed_at}"


class AdverseEventType(models.TextChoices):
    HYPERTENSION = "hypertension"
    TACHYCARDIA = "tachycardia"
    DESATURATION = "desaturation"
    NAUSEA_VOMITING = "nausea_vomiting", "nausea/vomiting"
    EMERGENCE = "emergence_reaction", "emergence reaction"
    EXCESSIVE_SEDATION = "excessive_sedation", "excessive sedation"
    RESPIRATORY_DEPRESSION = "respiratory_depression", "respiratory depression"
    OTHER = "other"


CTCAE_GRADES = [(1, "1 mild"), (2, "2 moderate"), (3, "3 severe"), (4, "4 life-threatening"),
                (5, "5 death")]


class AdverseEvent(models.Model):
    """An adverse event with its CTCAE v5 grade (facts 6.2). Grade >= 3 needs a prescriber's
    note; until it has one the session cannot be discharged."""

    session = models.ForeignKey(TreatmentSession, on_delete=models.PROTECT, related_name="adverse_events")
    type = models.CharField(max_length=30, choices=AdverseEventType.choices)
    description = models.CharField(max_length=300, blank=True)
    grade = models.PositiveSmallIntegerField(choices=CTCAE_GRADES)
    occurred_at = models.DateTimeField()
    action_taken = models.TextField()
    outcome = models.CharField(max_length=200)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField()
    prescriber_note = models.TextField(blank=True)
    prescriber = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} grade {self.grade}"

    @property
    def needs_prescriber_note(self) -> bool:
        return self.grade >= 3 and not self.prescriber_note


class DischargeAssessment(models.Model):
    """The discharge gate's inputs as the nurse entered them (stored when discharge succeeds)."""

    session = models.OneToOneField(TreatmentSession, on_delete=models.PROTECT, related_name="discharge")
    aldrete_answers = models.JSONField()  # activity, respiration, circulation, consciousness, SpO2
    aldrete_total = models.PositiveSmallIntegerField()
    responsible_adult_present = models.BooleanField()
    driving_instructions_given = models.BooleanField()
    # REMS evaluation question (facts 1.9): minutes from the start of administration.
    ready_to_leave_min = models.PositiveIntegerField(null=True, blank=True)
    results = models.JSONField(default=list)  # the discharge CheckResults
    assessed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assessed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Discharge of session {self.session_id}"
