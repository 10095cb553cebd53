import json
import os


DEFAULTS = {
    "host": "localhost",
    "port": 8080,
    "debug": False,
    "workers": 4,
}


class ConfigError(Exception):
    pass


def _coerce(key, value, default):
    if isinstance(default, bool):
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        return bool(value)
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError("%s must be an integer, got %r" % (key, value))
    return value


def load(path=None, environ=None):
    """Merge defaults, a JSON file and APP_* environment variables."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    if path:
        with open(path) as fh:
            data = json.load(fh)
        for key, value in data.items():
            if key not in DEFAULTS:
                raise ConfigError("unknown key: %s" % key)
            config[key] = _coerce(key, value, DEFAULTS[key])
    for key, default in DEFAULTS.items():
        env_key = "APP_" + key.upper()
        if env_key in environ:
            config[key] = _coerce(key, environ[env_key], default)
    return config
