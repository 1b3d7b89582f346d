"""Store tests; the shared suite gets pytest's assertion rewriting like a test module."""

import pytest

pytest.register_assert_rewrite(f"{__name__}.suite")
