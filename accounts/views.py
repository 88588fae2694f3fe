"""The one login page for every role, and where each role lands (DESIGN §7 pages)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import reverse

from accounts.roles import home_url, may_use_admin

NO_PAGES = "You are signed in, but no pages are yours yet; ask a manager for a role."


class LoginView(auth_views.LoginView):
    """`/accounts/login/`: after signing in, each role goes to its own pages; a `next` into
    the admin is followed only by people who may use the admin."""

    def get_success_url(self) -> str:
        wanted = self.get_redirect_url()
        user = self.request.user
        if wanted and not (wanted.startswith(reverse("admin:index")) and not may_use_admin(user)):
            return wanted
        return home_url(user) or reverse("home")


def home(request: HttpRequest) -> HttpResponse:
    """`/`: the signed-in person's own pages; the login page for a visitor."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    url = home_url(request.user)
    if url is None:
        return HttpResponseForbidden(NO_PAGES)
    return HttpResponseRedirect(url)


def admin_login(request: HttpRequest) -> HttpResponse:
    """`/admin/login/`: the one login page serves the admin too; a signed-in person whose
    role has no admin (an agent) is refused instead of being asked to sign in again."""
    if request.user.is_authenticated and not may_use_admin(request.user):
        return HttpResponseForbidden("The admin is for managers; your pages are elsewhere.")
    return redirect_to_login(request.GET.get("next") or reverse("admin:index"))
