from django.conf import settings
from django.contrib.auth.hashers import BCryptSHA256PasswordHasher


class ConfigurableBCryptSHA256PasswordHasher(BCryptSHA256PasswordHasher):
    """Django's bcrypt hasher with its cost from BCRYPT_ROUNDS.

    Keeping Django's algorithm name means hashes made at another cost still verify and are
    upgraded on the next login.
    """

    @property
    def rounds(self) -> int:  # type: ignore[override]
        return int(settings.BCRYPT_ROUNDS)
