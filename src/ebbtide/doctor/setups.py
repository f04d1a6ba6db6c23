"""The doctor on the simulator's built-in setups (`ebbtide doctor --setup NAME`): the rules a
seed's own scaler acts by, checked the same way a config is."""

from __future__ import annotations

from ebbtide.config.sections import SustainedPolicyConfig
from ebbtide.doctor.checks import TERMINATE_ALL_WHAT, TERMINATE_ALL_WHY, Finding, _m
from ebbtide.sim.setups import Setup


def diagnose_setup(setup: Setup, media_seconds: float) -> list[Finding]:
    pol = setup.policy
    out: list[Finding] = []
    if isinstance(pol, SustainedPolicyConfig) and setup.actuation == "aws" and not setup.protect_busy:
        out.append(
            Finding(
                "terminate-all",
                "error",
                TERMINATE_ALL_WHAT.format(idle=_m(pol.idle_to_zero), where=f"setup {setup.name}",
                                          job=_m(media_seconds)),
                TERMINATE_ALL_WHY.format(idle=_m(pol.idle_to_zero)),
                "scale the same pool with ebbtide (setup seed-002-ebbtide, or a config with the pool's "
                "workers: foreign): busy spots are kept until idle",
            )
        )
    return out
