"""risk_app test suite; mirrors the packages."""
