import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# Sized for a 2-core machine: enough examples to find edge cases, few enough to keep the suite short.
settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
