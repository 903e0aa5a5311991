"""Reads of the audit trail for the trail pages."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from audit.chain import Actor
from audit.models import Event
from booking.models import (
    BookedThrough,
    Booking,
    Channel,
    Language,
    Notification,
    NotificationChannel,
    NotificationKind,
    RegistryImport,
    Slot,
    StaffInvitation,
    StaffMember,
    VaccinationRecord,
    VaccineProduct,
    Venue,
    Voucher,
)
from booking.models.bookings import booking_number_display, booking_number_normalize
from booking.services.bulk_reads import bulk_reads_of
from booking.services.callcentre import (
    SEARCHED,
    AskedBy,
    CancelGivenReason,
    RevealReason,
    reveal_note_open,
)
from booking.services.reception import JAPAN, ProductChangeReason
from tenants.crypto import DecryptionFailed
from tenants.models import Municipality

PAGE_SIZE = 100
_HIDDEN_DETAILS = ("note_id", "note_sealed")


# What each family of actions is about, for an auditor who does not read the codes (the code
# is shown beside it: the filter takes its beginning).
ACTION_AREAS = {
    "booking": gettext_lazy("予約"),
    "callcentre": gettext_lazy("コールセンター"),
    "reception": gettext_lazy("受付・接種記録"),
    "resident": gettext_lazy("住民のログイン・アカウント"),
    "staff": gettext_lazy("職員アカウント"),
    "console": gettext_lazy("職員コンソール"),
    "registry_import": gettext_lazy("接種券名簿の取込"),
    "incident": gettext_lazy("インシデント対応"),
    "notification": gettext_lazy("お知らせの送信"),
    "slot": gettext_lazy("予約枠"),
    "slots": gettext_lazy("予約枠"),
    "venue": gettext_lazy("会場"),
    "booking_policy": gettext_lazy("予約の受付条件"),
    "age_phase": gettext_lazy("年齢区分"),
    "vaccine": gettext_lazy("ワクチン"),
    "export": gettext_lazy("データの出力"),
    "access": gettext_lazy("アクセスの拒否"),
    "demo": gettext_lazy("デモデータ"),
    "trail": gettext_lazy("監査記録"),
}


# What each action did, in the auditor's words: the event's main description. Every action a
# municipality's trail can hold has one (tests/booking/console/trail/test_trail_labels.py
# finds them in the source); an unknown one falls back to its area.
ACTION_LABELS = {
    "access.refused": gettext_lazy("アクセスの拒否（権限なし）"),
    "age_phase.created": gettext_lazy("年齢区分の追加"),
    "age_phase.updated": gettext_lazy("年齢区分の変更"),
    "age_phase.deleted": gettext_lazy("年齢区分の削除"),
    "booking.created": gettext_lazy("予約の作成"),
    "booking.changed": gettext_lazy("予約の変更"),
    "booking.cancelled": gettext_lazy("予約の取消"),
    "booking_policy.updated": gettext_lazy("予約の受付条件の変更"),
    "callcentre.searched": gettext_lazy("住民の検索（コールセンター）"),
    "callcentre.resident_viewed": gettext_lazy(
        "住民の登録内容の表示（一部伏せ字・コールセンター）"
    ),
    "callcentre.personal_data_revealed": gettext_lazy("個人情報の表示（コールセンター）"),
    "callcentre.identity_confirmed": gettext_lazy("本人確認の完了（コールセンター）"),
    "callcentre.identity_failed": gettext_lazy("本人確認の不一致（コールセンター）"),
    "callcentre.refused": gettext_lazy("操作の拒否（本人確認前・コールセンター）"),
    "callcentre.password_reset": gettext_lazy("住民のパスワードの再設定（コールセンター）"),
    "callcentre.login_lock_lifted": gettext_lazy("住民のログイン制限の解除（コールセンター）"),
    "resident.activation_code_replaced": gettext_lazy("認証コードの差し替え（郵送物の紛失・盗難）"),
    "callcentre.reminder_calls_listed": gettext_lazy(
        "前日のお知らせが届かない方の一覧の表示（コールセンター）"
    ),
    "callcentre.reminder_phoned": gettext_lazy("前日のお知らせの電話連絡済み（コールセンター）"),
    "callcentre.reminder_phoned_undone": gettext_lazy(
        "前日のお知らせの電話連絡済みの取消（コールセンター）"
    ),
    "console.login_succeeded": gettext_lazy("職員のログイン"),
    "console.login_failed": gettext_lazy("職員のログインの失敗"),
    "console.logout": gettext_lazy("職員のログアウト"),
    "console.access_refused": gettext_lazy("職員コンソールでのアクセスの拒否"),
    "console.network_refused": gettext_lazy("許可されていないネットワークからのアクセスの拒否"),
    "console.networks_replaced": gettext_lazy("職員コンソールを使えるネットワークの変更"),
    "demo.data_created": gettext_lazy("デモデータの作成"),
    "export.vrs": gettext_lazy("VRS用の接種記録CSVの出力"),
    "export.vrs_changes_viewed": gettext_lazy("VRSの出力後に訂正・取消した接種記録の一覧の表示"),
    "export.vrs_changes_done": gettext_lazy("VRSの出力後に訂正・取消した接種記録のVRSでの訂正済み"),
    "export.free_slots": gettext_lazy("空き枠の一覧の出力"),
    "export.report": gettext_lazy("集計の出力"),
    "incident.started": gettext_lazy("インシデントモードの開始"),
    "incident.ended": gettext_lazy("インシデントモードの終了"),
    "incident.codes_reissued": gettext_lazy("認証コードの再発行"),
    "incident.letters_secured": gettext_lazy(
        "郵送物の紛失・盗難への対応（ログインの停止・コードの差し替え）"
    ),
    "incident.letters_released": gettext_lazy("郵送物の紛失・盗難で止めたログインの再開"),
    "notification.preferences_updated": gettext_lazy("お知らせの受け取り方の変更（住民）"),
    "notification.language_updated": gettext_lazy("お知らせの言語の変更（住民）"),
    "notification.line_linked": gettext_lazy("LINEとの連携（住民）"),
    "notification.line_unlinked": gettext_lazy("LINEとの連携の解除（住民）"),
    "notification.line_link_refused": gettext_lazy("LINEとの連携の失敗（住民）"),
    "notification.line_channel_configured": gettext_lazy("LINEログインのチャネルの設定"),
    "notification.paused": gettext_lazy("お知らせの送信の一時停止"),
    "notification.resumed": gettext_lazy("お知らせの送信の再開"),
    "notification.resent": gettext_lazy("お知らせの再送"),
    "notification.settings_updated": gettext_lazy("お知らせの設定の変更"),
    "notification.template_saved": gettext_lazy("お知らせの文面の保存"),
    "notification.template_deleted": gettext_lazy("お知らせの文面の削除"),
    "reception.viewed": gettext_lazy("受付での住民の氏名・生年月日の表示"),
    "reception.roster_viewed": gettext_lazy("受付名簿（本日の予約者の氏名・生年月日）の表示"),
    "reception.checked_in": gettext_lazy("来場の受付"),
    "reception.check_in_undone": gettext_lazy("受付の取消（誤って受け付けたとき）"),
    "reception.deferred": gettext_lazy("接種の見合わせ（予診の結果など）"),
    "reception.deferral_undone": gettext_lazy("接種見合わせの取消（誤って記録したとき）"),
    "reception.refused": gettext_lazy("受付での操作の拒否"),
    "reception.vaccination_recorded": gettext_lazy("接種記録の登録"),
    "reception.vaccination_corrected": gettext_lazy("接種記録の訂正"),
    "reception.vaccination_voided": gettext_lazy("接種記録の取消（誤登録）"),
    "reception.no_shows_marked": gettext_lazy("来場なしの記録"),
    "registry_import.uploaded": gettext_lazy("接種券名簿のアップロード"),
    "registry_import.previewed": gettext_lazy("接種券名簿の確認（取込前）"),
    "registry_import.confirmed": gettext_lazy("接種券名簿の取込の開始"),
    "registry_import.applied": gettext_lazy("接種券名簿の取込の完了"),
    "registry_import.cancelled": gettext_lazy("接種券名簿の取込の取消"),
    "registry_import.failed": gettext_lazy("接種券名簿の取込の失敗"),
    "registry_import.resumed": gettext_lazy("接種券名簿の取込の再開"),
    "registry_import.auto_resume_stopped": gettext_lazy("接種券名簿の取込の自動再開の停止"),
    "registry_import.mapping_saved": gettext_lazy("接種券名簿の列の対応付けの保存"),
    "registry_import.codes_downloaded": gettext_lazy("認証コードのファイルのダウンロード"),
    "registry_import.error_file_downloaded": gettext_lazy("名簿のエラーファイルのダウンロード"),
    "registry_import.error_file_deleted": gettext_lazy(
        "名簿のエラーファイルの削除（保存期間の終了）"
    ),
    "registry_import.codes_file_deleted": gettext_lazy(
        "認証コードのファイルの削除（保存期間の終了）"
    ),
    "registry_import.upload_deleted": gettext_lazy("アップロードした名簿の削除（取込の終了後）"),
    "resident.login_succeeded": gettext_lazy("住民のログイン"),
    "resident.login_failed": gettext_lazy("住民のログインの失敗"),
    "resident.logout": gettext_lazy("住民のログアウト"),
    "resident.access_refused": gettext_lazy("住民サイトでのアクセスの拒否"),
    "resident.registration_checked": gettext_lazy("住民のアカウント登録前の確認"),
    "resident.registration_failed": gettext_lazy("住民のアカウント登録前の確認の失敗"),
    "resident.registered": gettext_lazy("住民のアカウント登録"),
    "resident.password_set": gettext_lazy("住民のパスワードの設定"),
    "resident.sessions_ended": gettext_lazy("住民のログイン中のセッションの終了"),
    "resident.web_login_disabled": gettext_lazy("住民のウェブでのログインの停止"),
    "resident.web_login_enabled": gettext_lazy("住民のウェブでのログインの再開"),
    "slots.created": gettext_lazy("予約枠の作成"),
    "slot.capacity_changed": gettext_lazy("予約枠の定員の変更"),
    "slot.closed": gettext_lazy("予約枠の受付停止"),
    "slot.reopened": gettext_lazy("予約枠の受付再開"),
    "slot.cancel_viewed": gettext_lazy("予約枠の中止前の予約の一覧の表示"),
    "slot.cancelled": gettext_lazy("予約枠の中止"),
    "slot.day_cancelled": gettext_lazy("1日分の予約枠の中止"),
    "slot.resident_phoned": gettext_lazy("中止を電話で連絡済み"),
    "slot.resident_phoned_undone": gettext_lazy("中止の電話連絡済みの印の取消"),
    "slot.cancellation_list_viewed": gettext_lazy("中止した予約枠の予約の一覧の表示"),
    "staff.invited": gettext_lazy("職員の招待"),
    "staff.invitation_emailed": gettext_lazy("職員への招待メールの送信"),
    "staff.invitation_withdrawn": gettext_lazy("職員の招待の取消"),
    "staff.invitation_refused": gettext_lazy("職員の招待の使用の拒否"),
    "staff.invitation_accepted": gettext_lazy("職員の招待の受諾（アカウントの作成）"),
    "staff.reset_issued": gettext_lazy("職員のパスワードの再設定の案内"),
    "staff.sessions_ended": gettext_lazy("職員のログイン中のセッションの終了"),
    "staff.deactivated": gettext_lazy("職員アカウントの無効化"),
    "staff.role_changed": gettext_lazy("職員の役割の変更"),
    "staff.venues_set": gettext_lazy("会場スタッフの担当会場の設定"),
    "trail.report_downloaded": gettext_lazy("閲覧の報告書の出力"),
    "trail.viewed": gettext_lazy("監査記録の閲覧"),
    "trail.exported": gettext_lazy("監査記録のCSV出力"),
    "vaccine.created": gettext_lazy("ワクチンの追加"),
    "vaccine.updated": gettext_lazy("ワクチンの変更"),
    "venue.created": gettext_lazy("会場の追加"),
    "venue.updated": gettext_lazy("会場の変更"),
    "venue.closed": gettext_lazy("会場の受付停止"),
    "venue.reopened": gettext_lazy("会場の受付再開"),
}

# What the details' keys mean, shown before the key itself.
DETAIL_LABELS = {
    "active": gettext_lazy("有効な接種券"),
    "added": gettext_lazy("追加した会場"),
    "addresses_checked": gettext_lazy("確認した住所の数"),
    "addresses_elsewhere": gettext_lazy("ほかの市区町村の住所の数"),
    "after_no_show": gettext_lazy("来場なしのあとの受付"),
    "after_the_day": gettext_lazy("予約の日が過ぎてからの受付の記録"),
    "conditions": gettext_lazy("絞り込みの条件"),
    "notes_opened": gettext_lazy("開いたメモの数"),
    "allowed_networks": gettext_lazy("許可されたネットワークの数"),
    "already_registered": gettext_lazy("登録済み"),
    "as_of": gettext_lazy("時点"),
    "at_the_venue": gettext_lazy("会場の受付で予約（予約なしで来場）"),
    "asked_by": gettext_lazy("お申し出の方"),
    "basis": gettext_lazy("集計の基準"),
    "booked": gettext_lazy("予約数"),
    # What the booking's places were counted in (its channel), which a change by the call
    # centre moves to the call centre's: older events called it the booking's channel.
    "booked_channel": gettext_lazy("定員を使っていた経路"),
    "booked_through": gettext_lazy("予約した経路"),
    "booking": gettext_lazy("予約"),
    "bookings": gettext_lazy("予約"),
    "bookings_cancelled": gettext_lazy("取り消した予約の数"),
    "bookings_listed": gettext_lazy("表示した予約の数"),
    "by": gettext_lazy("検索の方法"),
    "call_centre": Channel.CALL_CENTRE.label,
    "capacity_call_centre": gettext_lazy("コールセンター枠"),
    "capacity_line": gettext_lazy("LINE枠"),
    "capacity_web": gettext_lazy("ウェブ枠"),
    "cascade_of": gettext_lazy("連動元の予約"),
    "changed": gettext_lazy("変更内容"),
    "channel": gettext_lazy("予約経路"),
    "channels": gettext_lazy("受け取る方法"),
    "code": gettext_lazy("コード"),
    "code_issued": gettext_lazy("認証コードの発行"),
    "codes": gettext_lazy("認証コードの数"),
    "codes_issued": gettext_lazy("発行した認証コード"),
    "codes_replaced": gettext_lazy("使用済みから再発行した認証コード"),
    "codes_voided": gettext_lazy("差し替えた未使用の認証コード"),
    "count": gettext_lazy("件数"),
    "created": gettext_lazy("作成した数"),
    "day": gettext_lazy("日"),
    "days": gettext_lazy("日数"),
    "doctor": gettext_lazy("医師名"),
    "dose": gettext_lazy("接種回数"),
    "doses_in_series": gettext_lazy("必要な接種回数"),
    "email_changed": gettext_lazy("メールアドレスの変更"),
    "email_given": gettext_lazy("メールアドレスの入力"),
    "encoding": gettext_lazy("文字コード"),
    "fields": gettext_lazy("対象の項目"),
    "file_name": gettext_lazy("ファイル名"),
    "first_day": gettext_lazy("開始日"),
    "from": gettext_lazy("開始"),
    "full_list": gettext_lazy("全件の名簿"),
    "given_reason": gettext_lazy("伺った理由"),
    "had_password": gettext_lazy("パスワードの設定があった"),
    "interval_days": gettext_lazy("接種間隔（日）"),
    "invalid": gettext_lazy("エラー（取り込まない行）"),
    "invitation": gettext_lazy("招待"),
    "language": gettext_lazy("言語"),
    "last_day": gettext_lazy("終了日"),
    "limit": gettext_lazy("制限の種類"),
    "line": Channel.LINE.label,
    "linked_cancelled": gettext_lazy("連動して取り消した予約の数"),
    "linked_listed": gettext_lazy("表示した連動する予約の数"),
    "linked_to": gettext_lazy("連動する予約"),
    "live_bookings_kept": gettext_lazy("そのまま残る予約の数"),
    "login_channel_id": gettext_lazy("LINEログインのチャネルID"),
    "login_mode": gettext_lazy("ログイン方式"),
    "lot_number": gettext_lazy("ロット番号"),
    "matched": gettext_lazy("一致した項目"),
    "method": gettext_lazy("方式"),
    "minimum_age": gettext_lazy("対象の下限年齢"),
    "mode": gettext_lazy("ログイン方式"),
    "networks": gettext_lazy("ネットワーク"),
    "named": gettext_lazy("入力された接種券の数"),
    "new": gettext_lazy("新規"),
    "not_exposed": gettext_lazy("郵送物だけではログインできないため、そのままにした数"),
    "not_found": gettext_lazy("有効な接種券になかった数"),
    "not_told": gettext_lazy("お知らせが届かない予約"),
    "notice": gettext_lazy("住民へのお知らせ"),
    "reopening_notice": gettext_lazy("再開のお知らせ"),
    "notice_text": gettext_lazy("住民へのお知らせの文面"),
    "notices_queued": gettext_lazy("送信待ちにしたお知らせの数"),
    "notifications": gettext_lazy("お知らせの数"),
    "operation": gettext_lazy("操作の種類"),
    "passwords_reset": gettext_lazy("無効にしたパスワードの数"),
    "path": gettext_lazy("URL"),
    "phase": gettext_lazy("段階"),
    "phone_changed": gettext_lazy("電話番号の変更"),
    "phone_given": gettext_lazy("電話番号の入力"),
    "places_elsewhere": gettext_lazy("住所の多かったほかの市区町村"),
    "places_of": gettext_lazy("使った定員の経路"),
    "planned": gettext_lazy("作成しようとした数"),
    "previous_channel": gettext_lazy("変更前の予約経路"),
    "previous_products": gettext_lazy("変更前のワクチン"),
    "previous_role": gettext_lazy("変更前の役割"),
    "previous_slot": gettext_lazy("変更前の予約枠"),
    "released": gettext_lazy("再開した数"),
    "previous_status": gettext_lazy("変更前の状態"),
    "product": gettext_lazy("ワクチン"),
    "product_reason": gettext_lazy("予約枠と異なるワクチンの理由"),
    "products": gettext_lazy("ワクチン"),
    "reason": gettext_lazy("理由"),
    "recorded_at": gettext_lazy("記録日時"),
    "reminder_time": gettext_lazy("前日のお知らせの時刻"),
    "reminders_enabled": gettext_lazy("前日のお知らせ"),
    "removed": gettext_lazy("外した会場"),
    "report": gettext_lazy("集計"),
    "requested_by": gettext_lazy("依頼した人"),
    "required_roles": gettext_lazy("必要な役割"),
    "reset": gettext_lazy("パスワードの再設定"),
    "residents": gettext_lazy("住民の数"),
    "results": gettext_lazy("検索結果の数"),
    "role": gettext_lazy("役割"),
    "rows": gettext_lazy("行数"),
    "sent": gettext_lazy("送信"),
    "sessions": gettext_lazy("終了したセッションの数"),
    "sessions_ended": gettext_lazy("終了したセッションの数"),
    "size": gettext_lazy("ファイルサイズ（バイト）"),
    "skipped": gettext_lazy("作成しなかった数"),
    "slot": gettext_lazy("予約枠"),
    "slot_product": gettext_lazy("予約枠のワクチン"),
    "slots_created": gettext_lazy("作成した予約枠の数"),
    "source": gettext_lazy("作成元"),
    "stop": gettext_lazy("止めた理由"),
    "stopped": gettext_lazy("ログインを止めた数"),
    "status": gettext_lazy("状態"),
    "status_reopened": gettext_lazy("住民向けサイトの再開"),
    "through_seq": gettext_lazy("訂正済みにした監査記録番号（まで）"),
    "to": gettext_lazy("終了"),
    "truncated": gettext_lazy("検索結果の省略"),
    "unchanged": gettext_lazy("変更なし"),
    "user_id": gettext_lazy("ユーザーID"),
    "vaccinated_on": gettext_lazy("接種日"),
    "venue": gettext_lazy("会場"),
    "venue_access_notes": gettext_lazy("交通案内"),
    "venue_accessibility": gettext_lazy("バリアフリー情報"),
    "venue_address": gettext_lazy("会場の住所"),
    "venue_area": gettext_lazy("地区"),
    "venue_day_bookings": gettext_lazy("デモで作った本日の予約"),
    "venue_map_url": gettext_lazy("地図のURL"),
    "venue_name": gettext_lazy("会場名"),
    "venues": gettext_lazy("会場"),
    "venues_cleared": gettext_lazy("外した担当会場の数"),
    "voucher": gettext_lazy("接種券"),
    "vouchers": gettext_lazy("接種券"),
    "voucher_ranges": gettext_lazy("対象の接種券"),
    "web": Channel.WEB.label,
    "withdrawn": gettext_lazy("対象外にする接種券"),
    "withdrawn_with_booking": gettext_lazy("対象外にする接種券のうち予約あり"),
}

# Keys that mean something else in one area (the action's beginning) or one action.
SCOPED_DETAIL_LABELS = {
    ("age_phase", "phase"): gettext_lazy("年齢区分"),
    ("notification", "subject"): gettext_lazy("件名"),
    ("notification", "body"): gettext_lazy("本文"),
    ("notification", "channel"): gettext_lazy("送信方法"),
    ("notification", "kind"): gettext_lazy("お知らせの種類"),
    ("registry_import", "changed"): gettext_lazy("変更"),
    ("slot.day_cancelled", "day"): gettext_lazy("日付"),
    ("slot.day_cancelled", "slots"): gettext_lazy("中止した予約枠"),
    ("slot.day_cancelled", "skipped"): gettext_lazy("中止しなかった予約枠（受付済みなど）"),
    ("registry_import", "source"): gettext_lazy("操作した場所"),
}

# Details that hold ids of the municipality's rows: shown as the numbers staff use (as the
# targets are), the id beside them.
ID_DETAILS = {
    "voucher": "booking.voucher",
    "vouchers": "booking.voucher",
    "booking": "booking.booking",
    "bookings": "booking.booking",
    "cascade_of": "booking.booking",
    "linked_to": "booking.booking",
    "not_told": "booking.booking",
    "venue_day_bookings": "booking.booking",
    "slot": "booking.slot",
    "previous_slot": "booking.slot",
    "venue": "booking.venue",
    "venues": "booking.venue",
    "added": "booking.venue",  # staff.venues_set
    "removed": "booking.venue",
    "products": "booking.vaccineproduct",
    "previous_products": "booking.vaccineproduct",
}
# Details that hold a vaccine's code: shown by its name, the code beside it.
PRODUCT_CODE_DETAILS = ("product", "slot_product")

# Values that are codes of known choices: shown by their names, the code beside them.
# (Anything with ``choices``, as Django's choices classes have.)
VALUE_CHOICES: dict[str, Any] = {
    "booked_channel": Channel,
    "booked_through": BookedThrough,
    "channel": Channel,
    "places_of": Channel,
    "language": Language,
    "login_mode": Municipality.LoginMode,
    "mode": Municipality.LoginMode,
    "previous_channel": Channel,
    "previous_role": StaffMember.Role,
    "product_reason": ProductChangeReason,
    "required_roles": StaffMember.Role,
    "role": StaffMember.Role,
    "stop": Voucher.WebLoginStop,
}


class ConsoleLoginFailure(models.TextChoices):
    """Why a console sign-in failed, as the trail records it (the page says one thing)."""

    THROTTLED = "throttled", gettext_lazy("試行が多すぎる")
    UNKNOWN_ACCOUNT = "unknown_account", gettext_lazy("登録のないメールアドレス")
    WRONG_PASSWORD = "wrong_password", gettext_lazy("パスワードの誤り")
    INACTIVE = "inactive", gettext_lazy("無効にしたアカウント")
    NOT_STAFF = "not_staff", gettext_lazy("職員ではないアカウント")
    NO_DEVICE = "no_device", gettext_lazy("認証アプリの登録がない")
    WRONG_CODE = "wrong_code", gettext_lazy("認証コードの誤り")


class ConsoleLoginLimit(models.TextChoices):
    """Which of the console login's limits stopped a sign-in."""

    ACCOUNT = "account", gettext_lazy("メールアドレスごとの試行回数")
    DEVICE = "device", gettext_lazy("ログインしたことのある端末ごとの試行回数")
    IP = "ip", gettext_lazy("接続元ごとの試行回数")


class InvitationFailure(models.TextChoices):
    """Why an invitation or reset link could not be used."""

    UNKNOWN = "unknown", gettext_lazy("存在しないリンク")
    USED = "used", gettext_lazy("使用済み")
    EXPIRED = "expired", gettext_lazy("期限切れ・取り消し済み")
    ACCOUNT_EXISTS = "account_exists", gettext_lazy("アカウントが既にある")
    ACCOUNT_CHANGED = "account_changed", gettext_lazy("アカウントが変更された")


class ResidentRefusal(models.TextChoices):
    """Why a resident's login, registration or page was refused, or their session ended."""

    ANONYMOUS = "anonymous", gettext_lazy("ログインしていない")
    UNSTAMPED = "unstamped", gettext_lazy("ログインの記録がないセッション")
    ABSOLUTE = "absolute", gettext_lazy("ログインから時間が経った")
    IDLE = "idle", gettext_lazy("一定時間操作がなかった")
    SITE_CLOSED = "site_closed", gettext_lazy("住民向けサイトの受付停止中")
    ENDED = "ended", gettext_lazy("職員が終了したセッション")
    VOUCHER_UNUSABLE = "voucher_unusable", gettext_lazy("使えなくなった接種券")
    LOGOUT = "logout", gettext_lazy("ログアウト")
    WRONG_MODE = "wrong_mode", gettext_lazy("この市区町村のログイン方法ではない")
    UNKNOWN_VOUCHER = "unknown_voucher", gettext_lazy("登録のない接種券番号")
    UNDECRYPTABLE = "undecryptable", gettext_lazy("接種券の記録を読めない")
    VOUCHER_WITHDRAWN = "voucher_withdrawn", gettext_lazy("対象外の接種券")
    WEB_LOGIN_DISABLED = "web_login_disabled", gettext_lazy("ウェブのログインを止めた接種券")
    WRONG_BIRTH_DATE = "wrong_birth_date", gettext_lazy("生年月日の誤り")
    WRONG_NAME = "wrong_name", gettext_lazy("カナ氏名の誤り")
    PASSWORD_SET = (
        "password_set",
        gettext_lazy("パスワード設定済み（生年月日ではログインできない）"),
    )
    NO_CODE = "no_code", gettext_lazy("ログインコードの発行がない")
    WRONG_CODE = "wrong_code", gettext_lazy("ログインコードの誤り")
    CODE_USED = "code_used", gettext_lazy("使用済みのログインコード")
    NO_PASSWORD = "no_password", gettext_lazy("パスワード未設定")
    WRONG_PASSWORD = "wrong_password", gettext_lazy("パスワードの誤り")
    UNKNOWN_ACCOUNT = "unknown_account", gettext_lazy("登録のないアカウント")
    THROTTLED = "throttled", gettext_lazy("試行が多すぎる")
    EXTRA_STEP_REQUIRED = "extra_step_required", gettext_lazy("カナ氏名の確認が必要")
    MALFORMED = "malformed", gettext_lazy("入力の形の誤り")
    PASSWORD_ALREADY_SET = "password_already_set", gettext_lazy("パスワード設定済み")


class PersonalItem(models.TextChoices):
    """A resident's personal items, as details name them (never their values)."""

    NAME = "name", gettext_lazy("氏名")
    NAME_KANA = "name_kana", gettext_lazy("カナ氏名")
    BIRTH_DATE = "birth_date", gettext_lazy("生年月日")
    SEX = "sex", gettext_lazy("性別")
    POSTAL_CODE = "postal_code", gettext_lazy("郵便番号")
    ADDRESS = "address", gettext_lazy("住所")
    PHONE = "phone", gettext_lazy("電話番号")
    EMAIL = "email", gettext_lazy("メールアドレス")
    VOUCHER_NUMBER = "voucher_number", gettext_lazy("接種券番号")


class ResidentLoginMethod(models.TextChoices):
    BIRTH_DATE = "birth_date", gettext_lazy("接種券番号と生年月日")
    CODE = "code", gettext_lazy("接種券番号とログインコード")
    PASSWORD = "password", gettext_lazy("接種券番号とパスワード")
    ACCOUNT = "account", gettext_lazy("アカウント")
    REGISTRATION = "registration", gettext_lazy("アカウントの登録")


class ReceptionRefusal(models.TextChoices):
    """Why reception refused an action (booking.services.reception's codes)."""

    NOT_FOUND = "not_found", gettext_lazy("予約が見つからない")
    NOT_A_NUMBER = "not_a_number", gettext_lazy("番号ではなく氏名などの入力")
    OTHER_VENUE = "other_venue", gettext_lazy("担当会場ではない")
    NO_VENUE = "no_venue", gettext_lazy("担当会場の設定がない")
    NOT_TODAY = "not_today", gettext_lazy("本日の予約ではない")
    NO_BOOKING_TODAY = "no_booking_today", gettext_lazy("本日の予約がない")
    TOO_MANY_LOOKUPS = "too_many_lookups", gettext_lazy("接種券番号での検索が多すぎる")
    ALREADY_CHECKED_IN = "already_checked_in", gettext_lazy("受付済み")
    BOOKED_AGAIN = "booked_again", gettext_lazy("同じ回を予約し直している")
    NOT_ACTIVE = "not_active", gettext_lazy("受付できない状態の予約")
    VOUCHER_WITHDRAWN = "voucher_withdrawn", gettext_lazy("対象外の接種券")
    NOT_CHECKED_IN = "not_checked_in", gettext_lazy("受付前")
    NOT_CHECKED_IN_NOW = "not_checked_in_now", gettext_lazy("受付済みの状態ではない")
    ALREADY_RECORDED = "already_recorded", gettext_lazy("接種を記録済み")
    FUTURE = "future", gettext_lazy("これから始まる枠")
    PRODUCT_REASON_REQUIRED = "product_reason_required", gettext_lazy("ワクチン変更の理由がない")
    LOT_NUMBER_REQUIRED = "lot_number_required", gettext_lazy("ロット番号がない")
    CORRECTION_REASON_REQUIRED = "correction_reason_required", gettext_lazy("訂正の理由がない")
    NOTHING_TO_CORRECT = "nothing_to_correct", gettext_lazy("訂正する箇所がない")
    ROLE = "role", gettext_lazy("権限がない")
    VOID_REASON_REQUIRED = "void_reason_required", gettext_lazy("取消の理由がない")
    LATER_DOSE_RECORDED = "later_dose_recorded", gettext_lazy("次の回を記録済み")
    DEFERRAL_UNDONE_ALREADY = "deferral_undone_already", gettext_lazy("見合わせを取消済み")
    NOT_DEFERRED = "not_deferred", gettext_lazy("見合わせで終了した予約ではない")
    DEFERRAL_NOT_TODAY = "deferral_not_today", gettext_lazy("見合わせの取消が当日ではない")
    BOOKED_AGAIN_AFTER_DEFERRAL = (
        "booked_again_after_deferral",
        gettext_lazy("見合わせのあと同じ回を予約し直している"),
    )
    SLOT_FULL_NOW = "slot_full_now", gettext_lazy("枠が埋まった")
    STAFF_VENUES_CHANGED = (
        "staff_venues_changed",
        gettext_lazy("担当会場がほかの職員に変更されていた"),
    )
    WALK_IN_UNKNOWN = "walk_in_unknown", gettext_lazy("登録のない接種券番号（予約のない方の受付）")


class ReceptionOperation(models.TextChoices):
    LOOKUP = "lookup", gettext_lazy("予約の検索")
    OPEN = "open", gettext_lazy("予約の表示")
    VIEW = "view", gettext_lazy("本人確認の表示")
    CHECK_IN = "check_in", gettext_lazy("受付")
    UNDO_CHECK_IN = "undo_check_in", gettext_lazy("受付の取消")
    DEFER = "defer", gettext_lazy("接種の見合わせ")
    UNDO_DEFERRAL = "undo_deferral", gettext_lazy("接種見合わせの取消")
    WALK_IN = "walk_in", gettext_lazy("予約のない方の当日受付")
    VACCINATION = "vaccination", gettext_lazy("接種の記録")
    CORRECT = "correct", gettext_lazy("接種記録の訂正")
    VOID = "void", gettext_lazy("接種記録の取消")
    NO_SHOWS = "no_shows", gettext_lazy("来場なしの記録")
    STAFF_VENUES = "staff_venues", gettext_lazy("担当会場の設定")
    ROSTER = "roster", gettext_lazy("受付名簿の表示")


SCOPED_VALUE_CHOICES: dict[tuple[str, str], type[models.Choices]] = {
    ("resident", "reason"): ResidentRefusal,
    ("resident", "method"): ResidentLoginMethod,
    ("reception.refused", "reason"): ReceptionRefusal,
    ("reception.refused", "operation"): ReceptionOperation,
    ("reception", "fields"): PersonalItem,
    ("callcentre", "matched"): PersonalItem,
    ("resident", "fields"): PersonalItem,
    ("booking.cancelled", "reason"): Booking.CancelReason,
    ("booking", "asked_by"): AskedBy,
    ("callcentre", "asked_by"): AskedBy,
    ("booking.cancelled", "given_reason"): CancelGivenReason,
    ("console.login_failed", "reason"): ConsoleLoginFailure,
    ("console.login_failed", "limit"): ConsoleLoginLimit,
    ("staff.invitation_refused", "reason"): InvitationFailure,
    ("callcentre.personal_data_revealed", "reason"): RevealReason,
    ("incident", "status"): Municipality.Status,
    ("notification", "channel"): NotificationChannel,
    ("notification", "channels"): NotificationChannel,
    ("notification", "kind"): NotificationKind,
    ("notification", "previous_status"): Notification.Status,
    ("registry_import", "source"): RegistryImport.Source,
    ("slot", "previous_status"): Slot.Status,
}


def action_area(action: str) -> str:
    return str(ACTION_AREAS.get(action.split(".", 1)[0], ""))


def action_label(action: str) -> str:
    """The action in words; the area's words for an action without its own."""
    label = ACTION_LABELS.get(action)
    return str(label) if label is not None else action_area(action)


def _scoped(
    scoped: dict[tuple[str, str], Any], generic: dict[str, Any], action: str, key: str
) -> Any:
    """What ``key`` means for this action, in its area, or anywhere (None if unknown)."""
    for scope in (action, action.split(".", 1)[0]):
        if (scope, key) in scoped:
            return scoped[(scope, key)]
    return generic.get(key)


def value_name(action: str, key: str, value: str) -> str:
    """The name of a coded detail value (a reason, a channel) as the trail shows it, or the
    value itself where it is no known code."""
    choices = _scoped(SCOPED_VALUE_CHOICES, VALUE_CHOICES, action, key)
    return str(dict(choices.choices).get(value, value)) if choices is not None else value


def _key_text(action: str, key: str) -> str:
    label = _scoped(SCOPED_DETAIL_LABELS, DETAIL_LABELS, action, key)
    return f"{label}（{key}）" if label is not None else key


def _value_text(action: str, key: str, value: object) -> str:
    choices = _scoped(SCOPED_VALUE_CHOICES, VALUE_CHOICES, action, key)
    if choices is not None:
        names = dict(choices.choices)
        if isinstance(value, str) and value in names:
            return f"{names[value]}（{value}）"
        if (
            isinstance(value, list)
            and value
            and all(isinstance(each, str) and each in names for each in value)
        ):
            return "、".join(f"{names[each]}（{each}）" for each in value)
    if isinstance(value, str):
        if key.endswith("_at") or key == "as_of":
            return _moment_text(value)
        return value or str(_("なし"))
    if isinstance(value, bool):
        return str(_("はい") if value else _("いいえ"))
    if value is None or value == []:
        return str(_("なし"))
    if isinstance(value, list) and all(isinstance(each, str | int) for each in value):
        # Changes ("closes_hours_before: 0 → 24") and names read as a list, not as JSON.
        return "、".join(str(each) for each in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _moment_text(value: str) -> str:
    """A moment a detail holds (ISO 8601, in UTC or with its offset) in Japan's time, as the
    trail's own times are shown; anything else as it is."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    return date_format(moment.astimezone(JAPAN), _("Y年n月j日 H:i:s"))


@dataclass(frozen=True)
class TrailRow:
    event: Event
    actor_label: str
    details_text: str
    note: str
    # What the event was about, by the numbers staff use (接種券番号, 予約番号, the slot's
    # time and venue); "" when the target is none of those.
    target_label: str = ""

    @property
    def area(self) -> str:
        return action_area(self.event.action)

    @property
    def label(self) -> str:
        return action_label(self.event.action)

    @property
    def details_lines(self) -> list[str]:
        return self.details_text.splitlines()


def _details_text(
    action: str, details: dict[str, Any], rows: dict[tuple[str, str], str] | None = None
) -> str:
    """One ``label（key）: value`` line per detail (just ``key: value`` for a key without a
    label; a known choice by its name, a row's id by its number in ``rows``, lists and
    objects otherwise as JSON)."""
    lines = []
    for key in sorted(details):
        if key in _HIDDEN_DETAILS:
            continue
        value = details[key]
        named = _rows_text(ID_DETAILS.get(key), value, rows or {})
        if key in PRODUCT_CODE_DETAILS and (rows or {}).get(("product_code", str(value))):
            named = f"{(rows or {})[('product_code', str(value))]}（{value}）"
        if named is None and key in RANGE_DETAILS:
            named = _ranges_text(value)
        shown = named if named is not None else _value_text(action, key, value)
        lines.append(f"{_key_text(action, key)}: {shown}")
    return "\n".join(lines)


# Details that hold ranges of row ids, [[first, last], …] (bulk reads of vouchers).
RANGE_DETAILS = ("voucher_ranges",)


def _ranges_text(value: object) -> str | None:
    """``[[1, 191], [200, 200]]`` as ``id 1〜191、id 200``; None if not such ranges."""
    if not isinstance(value, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, int) for n in pair)
        for pair in value
    ):
        return None
    return "、".join(
        f"id {first}" if first == last else f"id {first}〜{last}" for first, last in value
    )


def _ids_in(value: object) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list) and all(
        isinstance(each, int) and not isinstance(each, bool) for each in value
    ):
        return list(value)
    return []


def _rows_text(kind: str | None, value: object, rows: dict[tuple[str, str], str]) -> str | None:
    """Ids of ``kind`` as their numbers (``予約 ABCDE-12345（id 16）``); None if not ids."""
    if kind is None:
        return None
    ids = _ids_in(value)
    if not ids:
        return None
    return "、".join(
        f"{rows[(kind, str(pk))]}（id {pk}）" if (kind, str(pk)) in rows else f"id {pk}"
        for pk in ids
    )


def trail_note(details: dict[str, Any]) -> str:
    """A reveal's note, opened for the auditor ("" for none)."""
    try:
        return reveal_note_open(details)
    except DecryptionFailed:
        return _("（復号できません）")


def trail_page(
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    action: str | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    target: str | None = None,
    before: int | None = None,
    limit: int = PAGE_SIZE,
) -> tuple[list[TrailRow], int | None]:
    """Newest first; returns the rows and the ``before`` value of the next (older) page.

    ``action``: the beginning of the code (``reception.``) or words of its Japanese label
    (受付). ``actor_id``: the id, or the actor as the trail writes it (``staff:6``, with or
    without the e-mail after it), or a member of staff's e-mail. ``target``: a voucher
    number (what was done to that resident: their voucher and every booking of it) or a
    booking number."""
    events = Event.objects.all()
    if start is not None:
        events = events.filter(occurred_at__gte=start)
    if end is not None:
        events = events.filter(occurred_at__lt=end)
    if action:
        events = events.filter(_action_matching(action))
    if actor_id:
        actor_kind, actor_id = _actor_as_written(actor_kind, actor_id)
    if actor_kind:
        events = events.filter(actor_kind=actor_kind)
    if actor_id:
        events = events.filter(actor_id=actor_id)
    if target:
        events = events.filter(_target_matching(target))
    if before is not None:
        events = events.filter(seq__lt=before)
    page = list(events.order_by("-seq")[: limit + 1])
    more = page[limit - 1].seq if len(page) > limit else None
    page = page[:limit]
    # The staff accounts the page names, as actors or as targets: their addresses, at once.
    staff_ids = {
        int(event.actor_id)
        for event in page
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit()
    } | {
        int(event.target_id)
        for event in page
        if event.target_type == "auth.user" and event.target_id.isdigit()
    }
    emails = dict(get_user_model().objects.filter(pk__in=staff_ids).values_list("pk", "email"))
    # Residents acting, by their voucher numbers (what staff and the resident know them by).
    vouchers = dict(
        Voucher.objects.filter(
            pk__in={
                int(event.actor_id)
                for event in page
                if event.actor_kind == Actor.RESIDENT and event.actor_id.isdigit()
            }
        ).values_list("pk", "voucher_number")
    )
    targets = _target_labels(page, emails)  # the targets' and the details' rows
    rows = []
    for event in page:
        label = f"{event.actor_kind}:{event.actor_id}" if event.actor_id else event.actor_kind
        if event.actor_kind == Actor.STAFF and event.actor_id.isdigit():
            email = emails.get(int(event.actor_id))
            if email:
                label = f"{label} ({email})"
        if event.actor_kind == Actor.RESIDENT and event.actor_id.isdigit():
            number = vouchers.get(int(event.actor_id))
            if number:
                label = f"{label} ({_('接種券')} {number})"
        if event.actor_kind == Actor.VENDOR:
            # The vendor's operators are the vendor's to name: it knows who has this id.
            label = f"{label} ({_('運営事業者の担当者')})"
        details = event.details if isinstance(event.details, dict) else {}
        rows.append(
            TrailRow(
                event,
                label,
                _details_text(event.action, details, targets),
                trail_note(details),
                targets.get((event.target_type, event.target_id), ""),
            )
        )
    return rows, more


def _action_matching(text: str) -> models.Q:
    """The code's beginning, as written; words (Japanese) match the actions whose label
    has them."""
    text = text.strip()
    if text.isascii():
        return models.Q(action__startswith=text)
    actions = [code for code, label in ACTION_LABELS.items() if text in str(label)]
    return models.Q(action__in=actions)


_ACTOR_WRITTEN = re.compile(r"(?P<kind>[a-z_]+):(?P<id>[^\s(]*)")


def _actor_as_written(kind: str | None, text: str) -> tuple[str | None, str]:
    """The kind and id of an actor typed as the trail writes it, or by a staff e-mail."""
    text = text.strip()
    if "@" in text and not text.startswith(("staff:", "resident:")):
        user = get_user_model().objects.filter(email__iexact=text).first()
        return Actor.STAFF, str(user.pk) if user is not None else "-"
    typed = "".join(unicodedata.normalize("NFKC", text).split()).replace("-", "")
    if len(typed) == 10 and typed.isdigit():  # a voucher number: that resident's own acts
        voucher = Voucher.objects.filter(voucher_number=typed).first()
        return Actor.RESIDENT, str(voucher.pk) if voucher is not None else "-"
    written = _ACTOR_WRITTEN.match(text)
    if written is not None:
        return written["kind"], written["id"]
    return kind, text


# The reads whose details list the residents they showed, by voucher id (``vouchers``).
LISTING_ACTIONS = (
    SEARCHED,
    "reception.roster_viewed",
    "slot.cancel_viewed",
    "slot.cancellation_list_viewed",
    "export.vrs_changes_viewed",
)


def _target_matching(text: str) -> models.Q:
    """A voucher number: the voucher's events, its bookings' and its vaccination records',
    the lists that showed it (the call centre's searches, the venues' lists of the day, …)
    and the bulk reads whose files held it. A booking number: its own, and its vaccination
    record's."""
    typed = booking_number_normalize(text)  # a voucher number folds the same way
    nothing = models.Q(pk__in=[])
    if typed.isdigit():
        voucher = Voucher.objects.filter(voucher_number=typed).first()
        # The files that held the resident (error files by number, even one never a voucher).
        bulk = models.Q(seq__in=bulk_reads_of(typed, voucher.pk if voucher else None))
        if voucher is None:
            return bulk
        bookings = [str(pk) for pk in voucher.bookings.values_list("pk", flat=True)]
        records = VaccinationRecord.every_record.filter(voucher=voucher)
        return (
            models.Q(target_type="booking.voucher", target_id=str(voucher.pk))
            | models.Q(target_type="booking.booking", target_id__in=bookings)
            | _records_q(records)
            # The lists that showed them, and the files that held them.
            | models.Q(action__in=LISTING_ACTIONS, details__vouchers__contains=[voucher.pk])
            | bulk
        )
    booking = Booking.objects.filter(booking_number=typed).first()
    if booking is None:
        return nothing
    return models.Q(target_type="booking.booking", target_id=str(booking.pk)) | _records_q(
        VaccinationRecord.every_record.filter(booking_id=booking.pk)
    )


def _records_q(records: models.QuerySet[VaccinationRecord]) -> models.Q:
    """The events of these vaccination records (withdrawn ones too: their voiding)."""
    ids = [str(pk) for pk in records.values_list("pk", flat=True)]
    return models.Q(target_type="booking.vaccinationrecord", target_id__in=ids)


def _target_labels(events: list[Event], emails: dict[int, str]) -> dict[tuple[str, str], str]:
    """The page's targets in staff's words, a query per kind of target on the page (staff
    accounts by ``emails``, read with the page's actors)."""
    ids: dict[str, set[int]] = {}
    for event in events:
        if event.target_id.isdigit():
            ids.setdefault(event.target_type, set()).add(int(event.target_id))
        details = event.details if isinstance(event.details, dict) else {}
        for key, kind in ID_DETAILS.items():
            ids.setdefault(kind, set()).update(_ids_in(details.get(key)))
    labels: dict[tuple[str, str], str] = {}
    if any(key in (event.details or {}) for event in events for key in PRODUCT_CODE_DETAILS):
        for pk, code, name in VaccineProduct.objects.values_list("pk", "code", "name"):
            labels[("product_code", code)] = name
            labels[("booking.vaccineproduct", str(pk))] = name
    elif ids.get("booking.vaccineproduct"):
        for pk, name in VaccineProduct.objects.filter(
            pk__in=ids["booking.vaccineproduct"]
        ).values_list("pk", "name"):
            labels[("booking.vaccineproduct", str(pk))] = name

    def put(kind: str, found: Any, words: Any) -> None:
        for pk, *values in found:
            labels[(kind, str(pk))] = str(words(*values))

    if "booking.voucher" in ids:
        put(
            "booking.voucher",
            Voucher.objects.filter(pk__in=ids["booking.voucher"]).values_list(
                "pk", "voucher_number"
            ),
            lambda number: _("接種券 %(number)s") % {"number": number},
        )
    if "booking.booking" in ids:
        put(
            "booking.booking",
            Booking.objects.filter(pk__in=ids["booking.booking"]).values_list(
                "pk", "booking_number"
            ),
            lambda number: _("予約 %(number)s") % {"number": booking_number_display(number)},
        )
    if "booking.slot" in ids:
        put(
            "booking.slot",
            Slot.objects.filter(pk__in=ids["booking.slot"]).values_list(
                "pk", "starts_at", "venue__name"
            ),
            lambda starts, venue: (
                _("予約枠 %(when)s %(venue)s")
                % {"when": date_format(timezone.localtime(starts), _("n月j日 H:i")), "venue": venue}
            ),
        )
    if "booking.venue" in ids:
        put(
            "booking.venue",
            Venue.objects.filter(pk__in=ids["booking.venue"]).values_list("pk", "name"),
            lambda name: _("会場 %(name)s") % {"name": name},
        )
    if "booking.vaccinationrecord" in ids:
        put(
            "booking.vaccinationrecord",
            VaccinationRecord.every_record.filter(
                pk__in=ids["booking.vaccinationrecord"]
            ).values_list("pk", "dose", "voucher__voucher_number"),
            lambda dose, number: (
                _("接種記録 %(dose)s回目（接種券 %(number)s）") % {"dose": dose, "number": number}
            ),
        )
    # Staff accounts and invitations, by the address the admin knows them by.
    if "auth.user" in ids:
        put(
            "auth.user",
            [(pk, emails[pk]) for pk in ids["auth.user"] if pk in emails],
            lambda email: _("職員 %(email)s") % {"email": email},
        )
    if "booking.staffinvitation" in ids:
        put(
            "booking.staffinvitation",
            StaffInvitation.objects.filter(pk__in=ids["booking.staffinvitation"]).values_list(
                "pk", "email"
            ),
            lambda email: _("招待 %(email)s") % {"email": email},
        )
    return labels
