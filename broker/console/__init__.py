"""The operator console: sign-in and roles, the JSON API, and the web UI served with it.

Modules: ``users`` and ``sessions`` (stores), ``auth`` (who is asking,
``require_role``, CSRF, sign-in), ``users_api``, ``flows``, ``partners`` (API
routes), ``api`` (the message status API), ``ui`` and ``i18n`` (pages, labels),
``role`` (the ``console`` role).
"""
