"""URL map: the admin, login, the language switch and Wuye's own screens."""

from importlib.util import find_spec

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "Wuye 物业收费"
admin.site.site_title = "Wuye"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
]
# Imports/exports (issue 2, built alongside): mounted once the module exists.
if find_spec("wuye.imports.urls") is not None:
    urlpatterns.append(path("imports/", include("wuye.imports.urls")))
urlpatterns.append(path("counter/", include("wuye.counter.urls")))
# Receipts: staff screens and the public QR verification page /r/<token>/.
urlpatterns.append(path("r/", include("wuye.receipts.urls")))
# Bank card (issue 4): terminal management screens, the terminals' own API, card orders.
urlpatterns.append(path("terminals/", include("wuye.terminals.urls")))
urlpatterns.append(path("api/terminal/", include("wuye.terminals.api_urls")))
urlpatterns.append(path("pay/card/", include("wuye.channels.card.urls")))
# QR (issue 5): the counter's QR page, provider notifications, bill notices.
urlpatterns.append(path("pay/qr/", include("wuye.channels.qrpay.urls")))
urlpatterns.append(path("pay/wechat/", include("wuye.channels.wechat.urls")))
urlpatterns.append(path("pay/alipay/", include("wuye.channels.alipay.urls")))
urlpatterns.append(path("notices/", include("wuye.notices.urls")))
# Reconciliation (issue 6).
urlpatterns.append(path("reconciliation/", include("wuye.reconciliation.urls")))
urlpatterns.append(path("api/payments/", include("wuye.payments.urls")))
urlpatterns.append(path("", include("wuye.web.urls")))
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
