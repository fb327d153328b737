"""CrossGuard entry point: `pulumi preview --policy-pack policy/` runs this file.

Constructing PolicyPack starts the analyzer's gRPC server (it never returns), so the policies
themselves live in controls_pack.py, where tests import them.
"""

from controls_pack import PACK_NAME, policies
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
