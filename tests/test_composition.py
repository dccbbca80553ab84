"""Composition of model files: mistakes in them are one line naming the model file and key.

The model files are copied to a temporary folder, broken one way each, and composed
through the real CLI (`uksim explain`), which must exit 2 with one line on stderr.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import sim.composition as composition
from sim.cli import main

MODELS = Path(__file__).resolve().parent.parent / "models"


@pytest.fixture
def models(tmp_path: Path, monkeypatch) -> Path:
    root = tmp_path / "models"
    shutil.copytree(MODELS, root)
    monkeypatch.setattr(composition, "models_dir", lambda: root)
    composition._load.cache_clear()
    yield root
    composition._load.cache_clear()


def _explain(capsys, *args: str) -> str:
    code = main(["explain", "-n", "2000", "--reps", "2", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_unknown_platform_lists_the_known_ones(models, capsys):
    line = _explain(capsys, "--platform", "firecracker")
    assert "firecracker" in line and "osv_kvm" in line


def test_unknown_stage_kind_names_the_platform_file_and_key(models, capsys):
    f = models / "platforms" / "osv_kvm.toml"
    f.write_text(f.read_text().replace('[stages."osv.irq"]\nkind = "batch"',
                                       '[stages."osv.irq"]\nkind = "teleport"'))
    line = _explain(capsys, "--platform", "osv_kvm")
    assert "osv_kvm.toml" in line and "stages.osv.irq.kind" in line and "teleport" in line


def test_a_test_running_an_unknown_command_names_the_app_file(models, capsys):
    f = models / "workloads" / "redis-benchmark.toml"
    f.write_text(f.read_text().replace('[tests.GET]\ncommand = "GET"',
                                       '[tests.GET]\ncommand = "GETX"'))
    line = _explain(capsys, "--platform", "ubuntu_bare", "--test", "GET")
    assert "redis.toml" in line and "GETX" in line


def test_a_negative_layer_cost_names_parameters_toml(models, capsys, monkeypatch):
    import sim.parameters as parameters

    monkeypatch.setattr(parameters, "models_dir", lambda: models)
    f = models / "parameters.toml"
    f.write_text(f.read_text().replace("[linux.tcp]\nvalue = 3000.0", "[linux.tcp]\nvalue = -3.0"))
    line = _explain(capsys, "--platform", "ubuntu_bare")
    assert "parameters.toml" in line and "linux.tcp.value" in line


def test_a_pipeline_of_zero_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", "--platform", "ubuntu_bare", "-P", "0"])
    assert exc.value.code == 2


def _get_rate(tmp_path: Path, *pin: str) -> float:
    """Throughput (req/s) of redis GET -P 10 on ubuntu_bare, with ``--pin`` arguments."""
    pins = [a for p in pin for a in ("--pin", p)]
    out = tmp_path / f"get{len(list(tmp_path.iterdir()))}.json"
    assert main(["predict", "--platform", "ubuntu_bare", "-P", "10", "-n", "4000", "--reps",
                 "2", "--json", str(out), *pins]) == 0
    return json.loads(out.read_text())["throughput_rps"]["value"]


def test_pinning_the_server_onto_the_client_s_core_makes_them_share_it(tmp_path):
    apart = _get_rate(tmp_path)  # i5-3470: client on core 0, server on core 1
    shared = _get_rate(tmp_path, "server=0")
    moved = _get_rate(tmp_path, "server=3")  # another idle core: nothing changes
    assert shared < 0.8 * apart
    assert moved == pytest.approx(apart, rel=0.02)


@pytest.mark.parametrize(("pin", "needle"), [
    ("gpu=1", "no context of this run has the role 'gpu'"),
    ("server=4", "has 4 cores (0 to 3)"),
])
def test_a_pin_the_host_cannot_honour_is_one_line_and_exit_2(capsys, pin, needle):
    assert main(["predict", "--platform", "ubuntu_bare", "--pin", pin, "-n", "1000"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1, err


@pytest.mark.parametrize(("pin", "needle"), [
    ("server", "expected ROLE=CORES"),
    ("server=1,1", "distinct"),
    ("server=a", "core indices"),
])
def test_a_malformed_pin_is_an_argparse_error(capsys, pin, needle):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--platform", "ubuntu_bare", "--pin", pin])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and needle in err.strip().splitlines()[-1]


@pytest.mark.parametrize(("app", "tool"), [("nginx", "ab -c 10"), ("result", "ab -c 10"),
                                           ("redis", "redis-benchmark -c 10 -P 10")])
def test_an_app_is_driven_by_its_own_load_generator_unless_another_is_named(capsys, app,
                                                                            tool):
    assert main(["explain", "--platform", "osv_kvm", "--app", app, "-n", "1000", "--reps",
                 "2"]) == 0
    assert f"; {tool};" in capsys.readouterr().out.splitlines()[0]


def test_an_app_naming_an_unknown_load_generator_names_its_file_and_key(models, capsys):
    f = models / "apps" / "nginx.toml"
    f.write_text(f.read_text().replace('workload = "ab"', 'workload = "siege"', 1))
    line = _explain(capsys, "--platform", "osv_kvm", "--app", "nginx")
    assert "nginx.toml" in line and "app.workload" in line and "siege" in line
    assert main(["predict", "--platform", "osv_kvm", "--app", "nginx", "-n", "100"]) == 2
    assert "app.workload" in capsys.readouterr().err


def test_a_role_the_host_lacks_can_be_pinned(capsys):
    # the measured 2-core host has no vhost-net thread: a KVM guest needs one placed
    base = ["predict", "--host", "python-kind-2core", "--platform", "osv_kvm", "-n", "500",
            "--reps", "2"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "placement.vhost" in err and "--pin vhost=CORES" in err
    assert main([*base, "--pin", "vhost=1"]) == 0


@pytest.mark.parametrize("test,elements", [
    ("LRANGE_100", 100), ("LRANGE_300", 300), ("LRANGE_500", 450), ("LRANGE_600", 600),
    ("LRANGE_500_V7", 500),
])
def test_lrange_replies_carry_the_elements_redis_benchmark_asks_for(test, elements):
    # redis-benchmark before Redis 7.0 (the study's 3.0.6) sends "LRANGE mylist 0 449" for
    # LRANGE_500; the reply is "*N\r\n" and N bulk strings "$3\r\nxxx\r\n" of 9 bytes
    _, spec = composition._load("workloads", "redis-benchmark")
    assert spec["tests"][test]["reply_bytes"] == len(f"*{elements}\r\n") + 9 * elements


def test_sadd_looks_its_member_up_in_the_set_as_well_as_the_key():
    # Redis 3.0's saddCommand: lookupKeyWrite for the set, then setTypeAdd's dictAdd
    # hashes the member into the set's own dict (found there after the first call)
    from sim.composition import Settings, compose
    from sim.parameters import current_parameters

    def route(test: str) -> list[str]:
        raw = compose("i5-3470", "ubuntu_bare", "redis", "redis-benchmark", test,
                      current_parameters(), Settings(clients=10, pipeline=10))
        return raw["path"]["route"]

    sadd, get, spop = route("SADD"), route("GET"), route("SPOP")
    assert sadd.index("redis.lookup") < sadd.index("redis.member") < sadd.index("redis.reply")
    assert "redis.lookup" in get and "redis.member" not in get and "redis.member" not in spop


@pytest.mark.parametrize("test,list_bytes", [("LRANGE_100", 0.0), ("LRANGE_600", 37676.0)])
def test_only_the_replies_past_redis_s_16_kb_buffer_pay_the_reply_list(test, list_bytes):
    # Redis 3.0 copies replies into the client's 16 KB static buffer, then appends the rest
    # to its reply list: at -P 10, LRANGE_100's ten 906-byte replies fit, and of
    # LRANGE_600's ten 5,406-byte ones, 54,060 - 16,384 bytes take the list
    from sim.composition import Settings, compose
    from sim.parameters import current_parameters
    from sim.scenario import expand_and_resolve, to_model

    params = current_parameters()
    raw = compose("i5-3470", "ubuntu_bare", "redis", "redis-benchmark", test, params,
                  Settings(clients=10, pipeline=10))
    spec = to_model(expand_and_resolve(raw, "<test>")[0]).stages["redis.reply_list"]
    message = 10 * raw["workload"]["classes"][0]["reply_bytes"]
    cost = spec.cost.mean_for(0.0, message)
    assert spec.cost.beyond == 16384
    assert cost == pytest.approx(list_bytes * params["redis.per_list_reply_byte"])


def test_a_batch_window_may_be_a_parameter_expression():
    # NetBSD's receive interrupt waits out a window opened by the first message
    from sim.composition import Settings, compose
    from sim.parameters import current_parameters

    params = current_parameters()
    raw = compose("i5-3470", "netbsd_kvm", "redis", "redis-benchmark", "GET", params,
                  Settings(clients=10, pipeline=10))
    window = raw["stages"]["nb.intr"]["window"]
    assert window == pytest.approx(params["netbsd.wakeup_latency"])
