"""Admins say where venue staff work; reception follows."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client
from django_tenants.utils import tenant_context

from booking.models import StaffMember
from tenants.models import Municipality

from ..conftest import StaffAccount, events, make_staff
from .conftest import Day, logged_in


def test_an_admin_assigns_venues_and_the_staff_member_may_receive_there(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    newcomer = make_staff(tenant_a, "shinjin@kodaira.example.jp", StaffMember.Role.VENUE)
    logged_in(client_a, admin_a, clock)
    page = client_a.get("/console/reception/staff-venues/").content.decode()
    assert "shinjin@kodaira.example.jp" in page and "小平市役所" in page
    prefix = f"staff-{newcomer.staff_id}"
    response = client_a.post(
        "/console/reception/staff-venues/",
        {"member": str(newcomer.staff_id), f"{prefix}-venues": [str(day.civic.pk)]},
    )
    assert response.status_code == 302
    with tenant_context(tenant_a):
        member = StaffMember.objects.get(pk=newcomer.staff_id)
        assert list(member.venues.values_list("pk", flat=True)) == [day.civic.pk]
    (assigned,) = events(tenant_a, "staff.venues_set")
    assert assigned.details == {"added": [day.civic.pk], "removed": []}
    assert assigned.target_id == str(newcomer.user_id)

    other = Client(HTTP_HOST=client_a.defaults["HTTP_HOST"])
    logged_in(other, newcomer, clock)
    assert other.post("/console/reception/", {"number": day.number}).status_code == 302


def test_only_admins_assign_venues(
    tenant_a: Municipality, client_a: Client, day: Day, venue_a: StaffAccount, clock
) -> None:
    logged_in(client_a, venue_a, clock)
    prefix = f"staff-{venue_a.staff_id}"
    response = client_a.post(
        "/console/reception/staff-venues/",
        {"member": str(venue_a.staff_id), f"{prefix}-venues": [str(day.north.pk)]},
    )
    assert response.status_code == 403
    with tenant_context(tenant_a):
        venues = StaffMember.objects.get(pk=venue_a.staff_id).venues.values_list("pk", flat=True)
        assert list(venues) == [day.civic.pk]


def test_a_disabled_account_is_not_offered_venues(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    leaver = make_staff(tenant_a, "taishoku@kodaira.example.jp", StaffMember.Role.VENUE)
    with tenant_context(tenant_a):
        get_user_model().objects.filter(pk=leaver.user_id).update(is_active=False)
    logged_in(client_a, admin_a, clock)
    page = client_a.get("/console/reception/staff-venues/").content.decode()
    assert "taishoku@kodaira.example.jp" not in page
    refused = client_a.post(
        "/console/reception/staff-venues/",
        {"member": str(leaver.staff_id), f"staff-{leaver.staff_id}-venues": [str(day.civic.pk)]},
    )
    assert refused.status_code == 400
    with tenant_context(tenant_a):
        assert not StaffMember.objects.get(pk=leaver.staff_id).venues.exists()


def test_venues_changed_by_another_admin_meanwhile_are_not_saved_over(
    tenant_a: Municipality, client_a: Client, day: Day, admin_a: StaffAccount, clock
) -> None:
    """Two admins with the page open: the second save would drop the first's venue unseen
    (a nurse unable to check anyone in on the day). Refused; nothing written."""
    nurse = make_staff(tenant_a, "kango@kodaira.example.jp", StaffMember.Role.VENUE)
    logged_in(client_a, admin_a, clock)
    prefix = f"staff-{nurse.staff_id}"
    page = client_a.get("/console/reception/staff-venues/").content.decode()
    shown = page.split(f'name="{prefix}-seen"')[1].split('value="')[1].split('"')[0]
    with tenant_context(tenant_a):  # the other admin's save, meanwhile
        member = StaffMember.objects.get(pk=nurse.staff_id)
        member.venues.set([day.north])
    refused = client_a.post(
        "/console/reception/staff-venues/",
        {
            "member": str(nurse.staff_id),
            f"{prefix}-venues": [str(day.civic.pk)],
            f"{prefix}-seen": shown,
        },
    )
    assert refused.status_code == 400
    assert (
        "ほかの職員がこの方の担当会場を変更しました。保存していません" in refused.content.decode()
    )
    with tenant_context(tenant_a):
        venues = StaffMember.objects.get(pk=nurse.staff_id).venues.values_list("pk", flat=True)
        assert list(venues) == [day.north.pk]
    assert events(tenant_a, "staff.venues_set") == []
    # Opened again, both venues ticked, the save goes through.
    page = client_a.get("/console/reception/staff-venues/").content.decode()
    shown = page.split(f'name="{prefix}-seen"')[1].split('value="')[1].split('"')[0]
    assert shown == str(day.north.pk)
    saved = client_a.post(
        "/console/reception/staff-venues/",
        {
            "member": str(nurse.staff_id),
            f"{prefix}-venues": [str(day.civic.pk), str(day.north.pk)],
            f"{prefix}-seen": shown,
        },
    )
    assert saved.status_code == 302
