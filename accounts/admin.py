from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from accounts.models import User
from common import limits, messages
from common.errors import TooManyRequests


class UserForm(forms.ModelForm[User]):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current password.",
    )

    class Meta:
        model = User
        fields = ["name", "email", "role", "password", "is_active", "is_staff", "is_superuser"]

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        if self.cleaned_data.get("password"):
            user.set_password(self.cleaned_data["password"])
        elif user._state.adding:
            user.set_unusable_password()
        else:
            user.password = User.objects.values_list("password", flat=True).get(pk=user.pk)
        if commit:
            user.save()
        return user


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    form = UserForm
    list_display = ["email", "name", "role", "is_staff", "is_active"]
    list_filter = ["role", "is_staff", "is_active"]
    search_fields = ["name", "email"]
    ordering = ["email"]
    readonly_fields = ["id", "last_login"]


class LimitedLoginForm(AdminAuthenticationForm):
    """The admin's login form, counted with /auth/login's failed logins (common.limits.login_attempt: the same
    counters per email and address, and per address), so that the admin is no way around them. Over a limit
    the attempt is refused before its password is checked."""

    retry_after: int | None = None  # set when the limits refused the attempt

    def clean(self) -> dict[str, Any]:
        email, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if email is None or not password:
            return super().clean()  # a field is missing: nothing is checked, nothing counted
        ip = limits.client_ip(self.request) if self.request is not None else "unknown"
        try:
            attempt = limits.login_attempt(email, ip)
        except TooManyRequests as refused:
            self.retry_after = refused.retry_after
            raise ValidationError(messages.TOO_MANY_REQUESTS, code="too_many_requests") from None
        with attempt:
            try:
                return super().clean()
            except ValidationError:
                # A wrong email or password counts; a right password of a user who is not staff does not.
                if self.user_cache is None:
                    attempt.failed()
                raise


admin.site.login_form = LimitedLoginForm
# Roles are the users' `role` field; Django's groups and permissions are not used, so their section is hidden.
admin.site.unregister(Group)


def login(request: HttpRequest) -> HttpResponse:
    """The admin site's login view (attendance_site/urls.py routes /admin/login/ here), answering 429 with
    Retry-After when the limits refused the attempt: the form shows the error either way."""
    response = admin.site.login(request)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if isinstance(form, LimitedLoginForm) and form.retry_after is not None:
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response
