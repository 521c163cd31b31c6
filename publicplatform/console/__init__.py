"""The developer console: server-rendered pages where developers manage their accounts."""
