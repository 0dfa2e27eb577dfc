"""Every table's metadata, for Alembic's autogenerate and the migration drift test."""

from core.db import Base
from core import idempotency  # noqa: F401
from audit_log import models as audit_log_models  # noqa: F401
from accounts import models as accounts_models  # noqa: F401
from wallets import models as wallet_models  # noqa: F401
from reductions import models as reductions_models  # noqa: F401
from mall import models as mall_models  # noqa: F401

target_metadata = Base.metadata
from neutrality.cers import models as cer_models  # noqa: F401
from neutrality.market import models as market_models  # noqa: F401
from neutrality.retirement import models as retirement_models  # noqa: F401
from reviews import models as review_models  # noqa: F401
from measures import models as measures_models  # noqa: F401
from scenarios import models as scenario_models  # noqa: F401
from supervision import models as supervision_models  # noqa: F401
