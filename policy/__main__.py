"""CrossGuard entry point: `pulumi preview --policy-pack policy/` runs this file.

Constructing PolicyPack starts the analyzer's gRPC server (it never returns), so the policies
themselves live in `policy.controls_pack`, where tests import them. The pack's virtualenv
installs this checkout (requirements.txt: `-e ..`), so `policy`, `compliance` and `contract`
import as packages.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.controls_pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
