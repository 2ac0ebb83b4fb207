"""Clinic rule set versions: derived in the app, raise-only, immutable, recorded on each decision."""

from __future__ import annotations

import pytest

from ketasafe.patients.models import Problem
from ketasafe.screening import services
from ketasafe.screening.exceptions import RuleSetInvalid
from ketasafe.screening.models import RuleSetVersion

from .helpers import completed


def test_clinic_derives_and_activates_a_version_that_new_decisions_use(make_patient, make_staff):
    admin = make_staff("clinic_admin")
    base = RuleSetVersion.objects.get(version="default-v1")
    v = services.do_create_ruleset_version(actor=admin, base=base, version="clinic-1",
                                           thresholds={"bp_high_systolic": 135},
                                           severities={"BENZODIAZEPINE": "warning"})
    assert v.thresholds["bp_high_systolic"] == 135 and v.severities["BENZODIAZEPINE"] == "warning"
    assert not v.used
    services.do_activate_ruleset(actor=admin, ruleset=v)
    patient = make_patient()
    patient.medications.create(atc_code="N05BA06", name="lorazepam")
    s = completed(patient, make_staff("nurse"), systolic=138, diastolic=80)
    assert s.rules_version == "clinic-1" and s.ruleset == v
    assert {f["rule"]: f["severity"] for f in s.findings} == {"BENZODIAZEPINE": "warning", "BP-HIGH": "warning"}
    v.refresh_from_db()
    assert v.used


def test_derived_version_can_be_derived_again(make_staff):
    admin = make_staff("clinic_admin")
    base = RuleSetVersion.objects.get(version="default-v1")
    first = services.do_create_ruleset_version(actor=admin, base=base, version="c1", thresholds={"low_spo2": 94})
    second = services.do_create_ruleset_version(actor=admin, base=first, version="c2",
                                                severities={"OPIOID": "warning"})
    assert second.thresholds["low_spo2"] == 94 and second.based_on == first


@pytest.mark.parametrize(("kw", "text"), [
    ({"severities": {"GLAUCOMA": "caution"}}, "cannot be lowered"),
    ({"thresholds": {"low_spo2": 70}}, "outside"),
    ({"version": "default-v1"}, "already exists"),
])
def test_invalid_versions_are_refused(make_staff, kw, text):
    base = RuleSetVersion.objects.get(version="default-v1")
    with pytest.raises(RuleSetInvalid, match=text):
        services.do_create_ruleset_version(actor=make_staff("clinic_admin"), base=base,
                                           **{"version": "x1", **kw})
    assert RuleSetVersion.objects.count() == 1


def test_rule_set_form_refuses_a_lowered_severity_and_names_the_field(client_for):
    client = client_for("clinic_admin")
    base = RuleSetVersion.objects.get(version="default-v1")
    page = client.get(f"/screening/rulesets/new/{base.pk}/")
    form = page.context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(version="clinic-2", s_GLAUCOMA="caution")
    response = client.post(f"/screening/rulesets/new/{base.pk}/", data)
    assert response.status_code == 400
    assert "caution is not one of the available choices" in response.context["form"].errors["s_GLAUCOMA"][0]
    data.update(s_GLAUCOMA="contraindication", t_low_spo2="93")
    assert client.post(f"/screening/rulesets/new/{base.pk}/", data).status_code == 302
    assert RuleSetVersion.objects.get(version="clinic-2").severities["GLAUCOMA"] == "contraindication"


def test_old_decisions_keep_the_version_they_used(make_patient, make_staff):
    nurse = make_staff("nurse")
    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="H40.1", description="g", status="active")
    before = completed(patient, nurse)
    admin = make_staff("clinic_admin")
    v = services.do_create_ruleset_version(actor=admin, base=RuleSetVersion.objects.get(version="default-v1"),
                                           version="strict", severities={"GLAUCOMA": "contraindication"})
    services.do_activate_ruleset(actor=admin, ruleset=v)
    before.refresh_from_db()
    assert before.rules_version == "default-v1" and before.outcome == "needs_review"
