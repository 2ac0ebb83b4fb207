"""Observations (vital signs) from bedside monitors and by hand, and where they came from."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce

from .alert_rules import threshold_errors


class VitalKind(models.TextChoices):
    SYSTOLIC = "systolic"
    DIASTOLIC = "diastolic"
    MAP = "map", "mean arterial pressure"
    HEART_RATE = "heart_rate", "heart rate"
    PULSE_RATE = "pulse_rate", "pulse rate"
    SPO2 = "spo2", "SpO2"
    RESP_RATE = "resp_rate", "respiratory rate"
    TEMPERATURE = "temperature"
    WEIGHT = "weight"


class Source(models.TextChoices):
    MONITOR = "monitor"
    MANUAL = "manual"


# A reading the alert rules judge and have not judged yet (the watch's query uses these terms
# exactly, so that the partial index "observation_unjudged" serves it).
PENDING_JUDGEMENT = (models.Q(judged=False) & models.Q(session__isnull=False) & models.Q(value__isnull=False)
                     & ~models.Q(kind=""))


class Observation(models.Model):
    """One measured value. Monitor data is stored as received (raw fields kept) and, where the
    code map knows it, as a LOINC/UCUM value with a kind. Flags say what was odd about it."""

    # Indexes: each one is paid on every insert of the ingest hot path (~140 rows a batch), so
    # only those the queries use: (session, kind, observed_at) serves every per-session read and
    # "session IS NULL" (unassigned); patient and message serve their pages; unmapped is partial.
    session = models.ForeignKey("treatment_sessions.TreatmentSession", null=True, blank=True, db_index=False,
                                on_delete=models.PROTECT, related_name="observations")
    patient = models.ForeignKey("patients.Patient", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="observations")
    kind = models.CharField(max_length=20, choices=VitalKind.choices, blank=True)
    loinc = models.CharField(max_length=20, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=20, blank=True)  # UCUM
    observed_at = models.DateTimeField()
    source = models.CharField(max_length=10, choices=Source.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, db_index=False,
                                    on_delete=models.PROTECT, related_name="+")
    message = models.ForeignKey("monitoring.InboundMessage", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="observations")
    # As received from the monitor (empty for manual entries).
    raw_code = models.CharField(max_length=80, blank=True)
    raw_code_system = models.CharField(max_length=40, blank=True)
    raw_value = models.CharField(max_length=200, blank=True)
    raw_unit = models.CharField(max_length=80, blank=True)
    raw_code_text = models.CharField(max_length=120, blank=True)  # OBX-3.2
    raw_value_type = models.CharField(max_length=10, blank=True)  # OBX-2
    sub_id = models.CharField(max_length=40, blank=True)  # OBX-4 (PCD-01 containment path)
    device_id = models.CharField(max_length=120, blank=True)  # OBX-18 (inherited down the tree)
    # True when the code map had no entry for the code: shown to the admin, never guessed.
    unmapped = models.BooleanField(default=False)
    flags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once the alert rules have judged this reading (alerts.evaluate_session). A reading of a
    # session left unjudged (its on-commit evaluation failed, or the process stopped between the
    # commit and the evaluation) is judged by the periodic watch (alerts.judge_pending). A
    # database default, so that the ingest's plain INSERTs need not name it.
    judged = models.BooleanField(db_default=False)

    class Meta:
        indexes = [
            models.Index(fields=["session", "kind", "observed_at"]),
            models.Index(fields=["id"], condition=models.Q(unmapped=True), name="observation_unmapped"),
            # Only readings the watch may still have to judge: empty once the rules have run.
            models.Index(fields=["session"], condition=PENDING_JUDGEMENT, name="observation_unjudged"),
        ]

    def __str__(self) -> str:
        return f"{self.kind or self.raw_code} {self.value} {self.unit} at {self.observed_at}"


class InboundMessage(models.Model):
    """One HL7 message accepted from a monitor: unique per sender and control id (MSH-10), so a
    repeated message is acknowledged again and stored once."""

    sender = models.CharField(max_length=200)  # MSH-3 + MSH-4
    control_id = models.CharField(max_length=200)
    received_at = models.DateTimeField()
    raw = models.TextField()
    bed = models.CharField(max_length=80, blank=True)
    patient_identifier = models.CharField(max_length=80, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sender", "control_id"], name="inbound_once")]

    def __str__(self) -> str:
        return f"{self.sender} {self.control_id}"


class Device(models.Model):
    """A bedside monitor (or gateway) known by the identifier it sends: OBX-18 (EUI-64) or a part
    of MSH-3. Mapping it to a chair ties its data to that chair when PV1-3 is empty or unknown."""

    identifier = models.CharField(max_length=120, unique=True,
                                  help_text="OBX-18 equipment id (e.g. EUI-64) or MSH-3 as sent")
    label = models.CharField(max_length=80, blank=True)
    chair = models.ForeignKey("treatment_sessions.Chair", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="devices")
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["identifier"]

    def __str__(self) -> str:
        return self.label or self.identifier


class CodeMapEntry(models.Model):
    """One row of the code map (device code -> LOINC + UCUM), editable by a clinic admin.

    Seeded from ``hl7.codes.DEFAULT_CODE_MAP`` (``codemap.ensure_seeded``). ``source`` empty means
    every sender; a row with a source (the first component of MSH-3, e.g. the gateway vendor)
    overrides the clinic-wide row for that sender only. An inactive row removes the mapping."""

    source = models.CharField(max_length=80, blank=True, help_text="MSH-3 first component; empty = all senders")
    system = models.CharField(max_length=40, help_text="OBX-3.3 coding system, e.g. MDC, MDIL, or * for any")
    code = models.CharField(max_length=80, help_text="OBX-3.1")
    loinc = models.CharField(max_length=20)
    display = models.CharField(max_length=120)
    ucum_unit = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=20, choices=VitalKind.choices, blank=True)
    extra_loinc = models.CharField(max_length=80, blank=True, help_text="more LOINC codes, comma-separated")
    assume_unit_if_missing = models.BooleanField(default=False)
    plausible_low = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    plausible_high = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    reference = models.TextField(blank=True, help_text="where this mapping comes from")
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    class Meta:
        ordering = ["source", "system", "code"]
        constraints = [models.UniqueConstraint(fields=["source", "system", "code"], name="code_map_once")]

    def __str__(self) -> str:
        return f"{self.system} {self.code} -> {self.loinc}"


CLINIC_WIDE_EXISTS = "Clinic-wide alert rules already exist: edit them instead of adding a second set."
PROTOCOL_RULES_EXIST = "Alert rules for this protocol version already exist: edit them instead of adding a second set."


class AlertRuleSet(models.Model):
    """Alert thresholds for one protocol version, or clinic-wide when ``protocol_version`` is
    empty. Field names are those of ``alert_rules.AlertThresholds``; the defaults come from it."""

    protocol_version = models.OneToOneField("protocols.ProtocolVersion", null=True, blank=True,
                                            on_delete=models.PROTECT, related_name="alert_rules")
    systolic_high = models.DecimalField(max_digits=6, decimal_places=1)
    diastolic_high = models.DecimalField(max_digits=6, decimal_places=1)
    spo2_low = models.DecimalField(max_digits=6, decimal_places=1)
    hr_high = models.DecimalField(max_digits=6, decimal_places=1)
    hr_low = models.DecimalField(max_digits=6, decimal_places=1)
    rr_low = models.DecimalField(max_digits=6, decimal_places=1)
    rise_systolic = models.DecimalField(max_digits=6, decimal_places=1)
    rise_diastolic = models.DecimalField(max_digits=6, decimal_places=1)
    stale_after_s = models.DecimalField(max_digits=6, decimal_places=0)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+")

    THRESHOLD_FIELDS = ("systolic_high", "diastolic_high", "spo2_low", "hr_high", "hr_low", "rr_low",
                        "rise_systolic", "rise_diastolic", "stale_after_s")

    class Meta:
        # NULLs never collide in a unique index, so the one clinic-wide set (no protocol version)
        # is made unique on COALESCE(protocol_version_id, 0); protocol versions are unique anyway.
        constraints = [models.UniqueConstraint(
            Coalesce("protocol_version", Value(0)), name="alert_rules_one_clinic_wide",
            violation_error_message=CLINIC_WIDE_EXISTS)]

    def __str__(self) -> str:
        return f"Alert rules for {self.protocol_version or 'the clinic'}"

    def clean(self) -> None:
        """The sanity bounds of every threshold (``alert_rules.THRESHOLD_BOUNDS``), whoever saves:
        the form (ModelForm validation calls this), ``services.do_save_alert_rules`` (full_clean)
        and the Django admin."""
        super().clean()
        values: dict[str, Decimal | None] = {}
        for name in self.THRESHOLD_FIELDS:
            value = getattr(self, name)
            try:
                values[name] = None if value is None else Decimal(str(value))
            except InvalidOperation:
                values[name] = None  # not a number: the field's own validation says so
        errors = threshold_errors(values)
        if errors:
            raise ValidationError(errors)


class AlertStatus(models.TextChoices):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


OPEN_ALERT_STATUSES = (AlertStatus.RAISED, AlertStatus.ACKNOWLEDGED)
STALE_FEED = "STALE_FEED"


class Alert(models.Model):
    """An alert on a session: raised -> acknowledged (by whom, when) -> resolved. Not
    acknowledged within ``ESCALATE_AFTER`` it is escalated to the prescriber on site.
    At most one open alert per session and code (constraint), so a persisting abnormal value does
    not flood the board; once resolved, the next abnormal reading raises a new one."""

    session = models.ForeignKey("treatment_sessions.TreatmentSession", on_delete=models.PROTECT,
                                related_name="alerts")
    chair = models.ForeignKey("treatment_sessions.Chair", null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=20)  # alert_rules.AlertCode or STALE_FEED
    kind = models.CharField(max_length=20, blank=True)
    value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    threshold = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    baseline = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    message = models.CharField(max_length=300)
    observation = models.ForeignKey(Observation, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=15, choices=AlertStatus.choices, default=AlertStatus.RAISED,
                              db_index=True)
    raised_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="+")
    escalated_at = models.DateTimeField(null=True, blank=True)
    escalated_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")  # None with resolved_at set: resolved by the system
    resolution = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["session", "code"],
                                               condition=~models.Q(status="resolved"),
                                               name="alert_open_once")]
        indexes = [models.Index(fields=["status", "raised_at"])]

    def __str__(self) -> str:
        return f"{self.code} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status != AlertStatus.RESOLVED
