"""cfs-operator flags → configuration; bad flags exit with a message naming the flag."""

import pytest

from cfs_operator.main import config_from_args, in_cluster_server, parse_args, peering_priority, split_address


def test_defaults_and_flags():
    args = parse_args([])
    assert (args.namespace, args.peering, args.liveness, args.metrics_address) == ([], None, None, "")
    args = parse_args(
        [
            "--namespace",
            "a",
            "--namespace",
            "b",
            "--peering",
            "cfs",
            "--drift-interval",
            "7.5",
            "--selection-interval",
            "2",
            "--workers",
            "4",
        ]
    )
    config = config_from_args(args)
    assert args.namespace == ["a", "b"] and args.peering == "cfs"
    assert (config.drift_interval, config.selection_interval, config.workers) == (7.5, 2.0, 4)
    assert config.claim_namespaces == ("a", "b")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--drift-interval", "0"], "argument --drift-interval: must be > 0, got 0"),
        (["--selection-interval", "-1"], "argument --selection-interval: must be > 0, got -1"),
        (["--workers", "0"], "argument --workers: must be >= 1, got 0"),
    ],
)
def test_bad_values_exit_with_the_flag_named(argv, words, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert words in capsys.readouterr().err


def test_metrics_address():
    assert split_address("127.0.0.1:9102") == ("127.0.0.1", 9102)
    assert split_address(":9102") == ("0.0.0.0", 9102)
    with pytest.raises(SystemExit, match="--metrics-address"):
        split_address("9102")


def test_peering_priority_never_ties_unless_told():
    """kopf pauses every live peer of equal priority, so replicas must not share the default."""
    assert peering_priority(parse_args([])) is None
    assert peering_priority(parse_args(["--peering", "p", "--peering-priority", "7"])) == 7
    drawn = {peering_priority(parse_args(["--peering", "p"])) for _ in range(20)}
    assert len(drawn) == 20 and all(1 <= p < 2**31 for p in drawn)


@pytest.mark.parametrize(
    ("environ", "server"),
    [
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, "https://10.96.0.1:443"),
        ({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}, "https://[fd00::1]:6443"),
        ({"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, None),
        ({}, None),
    ],
)
def test_in_cluster_server_is_the_address_the_kubelet_hands_pods(environ, server):
    assert in_cluster_server(environ) == server
