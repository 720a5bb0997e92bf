"""``padlock demo`` runs the whole story end to end on its own control plane and prints each step.

Runs the real command (its own kube-apiserver + etcd, registry and operator) and checks that every
step is titled and shows what a platform engineer must see: step 2's refusals come from the
operator's own webhook with their messages, one disable in credential-access is enough (one owner
per rule), ``padlock copy`` prints a CustomPolicy, v2's rule is in force with the user's choices and
``padlock show`` / ``padlock explain`` present it as new in 1.1.0, v3 is refused, the tuner turns
posted Falco alerts into a suggestion that ``padlock tune accept`` puts into the published ruleset,
and the lock policy holds with the operator stopped.
"""

from __future__ import annotations

import subprocess
import sys


def test_demo_prints_every_step_with_the_webhooks_refusals() -> None:
    done = subprocess.run([sys.executable, "-m", "padlock", "demo"], capture_output=True, text=True, timeout=600)
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-4000:]
    titles = [line for line in out.splitlines() if line.startswith("== ")]
    assert [t.split(":")[0] for t in titles] == [
        "== Starting a local control plane (kube-apiserver + etcd) and an OCI registry",
        "== Step 1", "== Step 2", "== Step 3", "== Step 4", "== Step 5", "== Step 6", "== Done"], titles
    step2 = out[out.index("== Step 2"):out.index("== Step 3")]
    assert step2.count("managedpolicy.padlock.dev/credential-access patched") == 1  # one disable is enough
    assert "stable-threat-detection" not in out
    assert "policyexception.padlock.dev/nginx-shell created" in step2
    assert 'admission webhook "validate-policyexception.padlock.dev" denied the request' in step2
    assert 'k8s.ns.name "payments" is another namespace' in step2
    assert 'admission webhook "lock-managedpolicy.padlock.dev" denied the request' in step2
    assert "padlock copy managedpolicy/credential-access my-credential-access" in step2
    assert "kind: CustomPolicy" in step2 and "followUpdates: true" in step2
    assert "custompolicy.padlock.dev/my-credential-access created" in step2
    assert ('GPG rule present: True; "Read cloud credentials file" disabled: True; nginx exception present: True'
            in out)
    step3 = out[out.index("== Step 3"):out.index("== Step 4")]
    assert "- Search GPG Private Keys  [WARNING] runs  ** new in 1.1.0" in step3
    assert "Added: new in 1.1.0" in step3 and "MITRE technique T1552.001 Unsecured Credentials" in step3
    assert "reason=ValidationFailed" in out and "still running 1.1.0" in out
    step5 = out[out.index("== Step 5"):out.index("== Step 6")]
    assert "terminal-shell-in-container-nginx-" in step5 and "Terminal shell in container" in step5
    assert "created PolicyException shop/terminal-shell-in-container-nginx-" in step5
    assert "padlock_pe_shop_terminal-shell-in-container-nginx-" in step5 and ": Accepted" in step5
    step6 = out[out.index("== Step 6"):]
    assert "ValidatingAdmissionPolicy 'padlock-lock-managedpolicies'" in step6
