from django.contrib import admin

from wuye.core.admin import ReadOnlyAdmin
from wuye.notices.models import Notice


@admin.register(Notice)
class NoticeAdmin(ReadOnlyAdmin):
    list_display = ("id", "community", "unit", "as_of", "total_fen", "created_at")
    list_filter = ("as_of",)
    search_fields = ("unit__label",)
