"""Built-in tasks; importing this package registers them."""

from vst.engine.tasks import single_image  # noqa: F401
