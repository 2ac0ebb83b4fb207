from django.urls import path

from . import views

app_name = "monitoring"
urlpatterns = [
    path("", views.board, name="board"),
    path("board/fragment/", views.board_fragment, name="board_fragment"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert_ack"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert_resolve"),
    path("sessions/<int:session_id>/chart/", views.session_chart, name="session_chart"),
    path("unassigned/", views.unassigned, name="unassigned"),
    path("unassigned/<int:message_id>/", views.assign, name="assign"),
    path("code-map/", views.code_map, name="code_map"),
    path("code-map/new/", views.code_map_edit, name="code_map_new"),
    path("code-map/<int:entry_id>/", views.code_map_edit, name="code_map_edit"),
    path("code-map/unmapped/", views.unmapped, name="unmapped"),
    path("alert-rules/", views.alert_rules, name="alert_rules"),
    path("alert-rules/new/", views.alert_rules_edit, name="alert_rules_new"),
    path("alert-rules/<int:rules_id>/", views.alert_rules_edit, name="alert_rules_edit"),
]
