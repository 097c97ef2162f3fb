from django import forms
from django.contrib import admin

from accounts.models import User


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
