import json
from ops import testing
from tests import relations
from tests.cluster.helpers import add_account, decoded, hub_secret


def test_probe(ctx, base_state, kube_server, kubeconfig):
    for ns, n in [("team-a", "alice"), ("team-a", "carol"), ("team-b", "bob")]:
        add_account(kube_server, ns, n)
    p = relations.s3()
    rel, secrets = p.pair()
    out = ctx.run(ctx.on.relation_changed(rel), base_state(relations={rel}, secrets=secrets))
    print(out.unit_status, [(r.method, r.path) for r in kube_server.requests])
    print(decoded(hub_secret(kube_server, "team-a", "alice")))
    print(out.secrets)
    for l in ctx.juju_log: print(l)
    kube_server.clear_requests()
    q = p.answer(relations.S3_PAYLOAD | {"access-key": "NEWKEY", "secret-key": "NEWSECRET"})
    rel, secrets = q.pair()
    sec = q.secret("access-key")
    out = ctx.run(ctx.on.secret_changed(sec), base_state(relations={rel}, secrets=secrets))
    print(out.unit_status, [(r.method, r.path) for r in kube_server.requests])
    print(decoded(hub_secret(kube_server, "team-a", "alice")))
    assert 0
