"""CloudConfig: endpoint forms, environment, validation, secret-free repr."""

import pytest

from cfs_cloud import CfsAuthError, CfsClient
from cfs_cloud.config import DEFAULT_ENDPOINT, CloudConfig, CloudConfigError, split_endpoint
from cfs_cloud.credentials import FileCredentials, StaticCredentials

SECRET_KEY = "kX9-very-secret-key-value"
TOKEN = "session-token-value-77"


@pytest.mark.parametrize(
    "endpoint, expected",
    [
        ("cfs.api3.finance.cloud.tencent.com", ("https", "cfs.api3.finance.cloud.tencent.com")),
        ("127.0.0.1:8080", ("https", "127.0.0.1:8080")),
        ("http://127.0.0.1:8080", ("http", "127.0.0.1:8080")),
        ("https://example.test:8443/", ("https", "example.test:8443")),
        ("localhost:9", ("https", "localhost:9")),
        ("  HTTP://127.0.0.1:8080/ \n", ("http", "127.0.0.1:8080")),
        ("cfs.api3.finance.cloud.tencent.com/", ("https", "cfs.api3.finance.cloud.tencent.com")),
        ("http://[::1]:8080", ("http", "[::1]:8080")),
    ],
)
def test_endpoint_forms(endpoint, expected):
    assert split_endpoint(endpoint) == expected


@pytest.mark.parametrize(
    "endpoint, fragment",
    [
        ("ftp://host", "scheme must be http or https"),
        ("http://host/path", "expected host"),
        ("host/cfs/", r"endpoint 'host/cfs/': expected host"),
        ("http://host//", "expected host"),
        ("http://host?x=1", "expected host"),
        ("http://user:pw@host", r"^endpoint: user info \(user:password@\) is not allowed$"),
        ("", "expected host"),
        ("http://host:99999", "invalid port"),
        ("http://", "expected host"),
    ],
)
def test_bad_endpoints_are_rejected_with_the_reason(endpoint, fragment):
    with pytest.raises(CloudConfigError, match=fragment):
        CloudConfig(endpoint=endpoint)


def test_from_env_reads_the_shared_variables():
    config = CloudConfig.from_env(
        {
            "CFS_ENDPOINT": "http://127.0.0.1:18080",
            "TENCENTCLOUD_REGION": "ap-beijing-fsi",
            "TENCENTCLOUD_SECRET_ID": " AKIDexample\n",
            "TENCENTCLOUD_SECRET_KEY": SECRET_KEY + "\n",
            "TENCENTCLOUD_SESSION_TOKEN": TOKEN,
        }
    )
    assert (config.scheme, config.host, config.region) == ("http", "127.0.0.1:18080", "ap-beijing-fsi")
    provider = config.credential_provider()
    assert isinstance(provider, StaticCredentials)
    assert provider.get_credential_info() == ("AKIDexample", SECRET_KEY, TOKEN)


def test_from_env_defaults_and_no_credentials():
    config = CloudConfig.from_env({})
    assert config.endpoint == DEFAULT_ENDPOINT and config.scheme == "https"
    assert config.region == "ap-shanghai-fsi"
    assert not config.has_credentials() and config.credential_provider() is None


def test_credentials_dir_wins_over_variables(tmp_path):
    config = CloudConfig.from_env(
        {"CFS_CREDENTIALS_DIR": str(tmp_path), "TENCENTCLOUD_SECRET_ID": "a", "TENCENTCLOUD_SECRET_KEY": "b"}
    )
    assert isinstance(config.credential_provider(), FileCredentials)


def test_overrides_and_rate_limits_are_frozen():
    config = CloudConfig.from_env({}, rate_limits={"CreateCfsFileSystem": 5})
    assert config.rate_limits["CreateCfsFileSystem"] == 5
    with pytest.raises(TypeError):
        config.rate_limits["CreateCfsFileSystem"] = 50


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        (
            "rate_limits",
            {"CreateCfsFileSystem": -1},
            r"rate_limits: CreateCfsFileSystem: calls per second must be a number >= 0 \(0 = off\)",
        ),
        (
            "rate_limits",
            {"CreateCfsFilesystem": 5},
            r"rate_limits: unknown action 'CreateCfsFilesystem' \(one of BindAutoSnapshotPolicy, ",
        ),
        ("rate_limits", {"CreateCfsSnapshot": float("nan")}, r"got nan"),
        ("region", "", r"region must be a region name such as ap-shanghai-fsi, got ''"),
        ("region", "ap shanghai", r"got 'ap shanghai'"),
        ("rate_limit_margin", 1.0, "rate_limit_margin must be in"),
        ("retry_deadline", 0, "retry_deadline must be > 0"),
        ("poll_min_interval", 5.0, "poll_min_interval must be <= poll_max_interval"),
        ("poll_min_gap", 5.0, r"poll_min_gap must be in \[0, poll_max_interval\], got 5.0"),
        ("poll_min_gap", -1, r"poll_min_gap must be in"),
    ],
)
def test_bad_tuning_names_the_field(field, value, fragment):
    with pytest.raises(CloudConfigError, match=fragment):
        CloudConfig(**{field: value})


def test_repr_never_shows_secrets():
    config = CloudConfig(secret_id="AKIDexample", secret_key=SECRET_KEY, session_token=TOKEN)
    text = repr(config) + str(config) + repr(config.credential_provider())
    assert "AKIDexample" in text
    assert SECRET_KEY not in text and TOKEN not in text


def test_rate_limits_from_env():
    config = CloudConfig.from_env({"CFS_RATE_LIMITS": " CreateCfsFileSystem=5, DescribeCfsFileSystems=0.5 ,"})
    assert dict(config.rate_limits) == {"CreateCfsFileSystem": 5, "DescribeCfsFileSystems": 0.5}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("CreateCfsFileSystem", "is not ACTION=N"),
        ("=5", "is not ACTION=N"),
        ("CreateCfsFileSystem=fast", "is not ACTION=N"),
        ("CreateCfsFileSystem=-2", "calls per second must be a number >= 0"),
        ("DescribeCfsFilesystems=5", "unknown action 'DescribeCfsFilesystems'"),
    ],
)
def test_bad_rate_limits_from_env_name_the_variable(text, fragment):
    with pytest.raises(CloudConfigError, match=rf"^CFS_RATE_LIMITS: .*{fragment}"):
        CloudConfig.from_env({"CFS_RATE_LIMITS": text})


def test_environment_values_are_trimmed():
    config = CloudConfig.from_env(
        {
            "CFS_ENDPOINT": " http://127.0.0.1:1/\n",
            "TENCENTCLOUD_REGION": "ap-beijing-fsi\n",
            "CFS_CREDENTIALS_DIR": " /secrets/cfs\n",
            "TENCENTCLOUD_SECRET_ID": "   ",
        }
    )
    assert (config.host, config.region, config.credentials_dir, config.secret_id) == (
        "127.0.0.1:1",
        "ap-beijing-fsi",
        "/secrets/cfs",
        None,
    )


def test_a_client_without_credentials_fails_each_call_clearly():
    client = CfsClient(CloudConfig(endpoint="http://127.0.0.1:1"))
    with pytest.raises(CfsAuthError, match="TENCENTCLOUD_SECRET_ID") as info:
        client.call("DescribeCfsFileSystems")
    assert info.value.code == "AuthFailure.MissingCredentials"


def test_poll_min_gap_defaults_to_the_max_interval():
    assert CloudConfig(poll_max_interval=0.8).poll_min_gap == 0.8
    assert CloudConfig(poll_min_gap=0.1).poll_min_gap == 0.1


def test_credential_clones_are_reused_per_credentials():
    """A clone keeps its per-thread SDK clients (and their HTTP connections), so CSI requests
    carrying the same secrets reuse it instead of building new ones each time."""
    client = CfsClient(CloudConfig(endpoint="http://127.0.0.1:1"))
    first = client.with_credentials("AKID1", "key-one")
    assert client.with_credentials(" AKID1", "key-one\n") is first
    assert first.with_credentials("AKID1", "key-one") is first
    assert client.with_credentials("AKID1", "key-one", "token") is not first
    assert client.with_credentials("AKID1", "key-two") is not first
    for i in range(40):  # a bounded cache: old credentials are dropped
        client.with_credentials(f"AKID{i}", "key")
    assert client.with_credentials("AKID1", "key-one") is not first
