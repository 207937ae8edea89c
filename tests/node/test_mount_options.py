"""Mount-option merging with the docs' defaults and the allowlist (injection attempts included)."""

import pytest

from cfs_csi.node.mount_options import MountOptionError, nfs_mount_options

V4_DEFAULT = ("vers=4.0", "noresvport", "hard", "timeo=600", "retrans=2")
V3_DEFAULT = ("vers=3", "nolock", "proto=tcp", "noresvport", "hard", "timeo=600", "retrans=2")


@pytest.mark.parametrize(
    "vers, user, expected_vers, expected",
    [
        # the docs' recommended commands, unchanged
        ("4", [], "4", V4_DEFAULT),
        ("3", [], "3", V3_DEFAULT),
        # a user option replaces the default of the same key, in place
        ("4", ["vers=4.1"], "4", ("vers=4.1", "noresvport", "hard", "timeo=600", "retrans=2")),
        ("4", ["nfsvers=4"], "4", ("nfsvers=4", "noresvport", "hard", "timeo=600", "retrans=2")),
        ("4", ["soft"], "4", ("vers=4.0", "noresvport", "soft", "timeo=600", "retrans=2")),
        ("4", ["resvport", "timeo=100"], "4", ("vers=4.0", "resvport", "hard", "timeo=100", "retrans=2")),
        # other options are appended in the order given
        ("4", ["noac", "actimeo=3"], "4", V4_DEFAULT + ("noac", "actimeo=3")),
        ("3", ["noac"], "3", V3_DEFAULT + ("noac",)),
        # one entry may carry several comma-separated options (the mountOptions context key)
        (
            "4",
            ["noac,actimeo=3", "", "rsize=1048576,"],
            "4",
            V4_DEFAULT + ("noac", "actimeo=3", "rsize=1048576"),
        ),
        # the PV's vers decides the protocol family and so which defaults apply
        ("4", ["vers=3"], "3", V3_DEFAULT),
        ("3", ["vers=4.0"], "4", V4_DEFAULT),
        (
            "3",
            ["lock", "proto=tcp6"],
            "3",
            ("vers=3", "lock", "proto=tcp6", "noresvport", "hard", "timeo=600", "retrans=2"),
        ),
        # the same option twice is fine; surrounding blanks are dropped
        ("4", ["noac", " noac "], "4", V4_DEFAULT + ("noac",)),
        (
            "4",
            ["sec=krb5:krb5i", "nconnect=4", "lookupcache=pos", "ro"],
            "4",
            V4_DEFAULT + ("sec=krb5:krb5i", "nconnect=4", "lookupcache=pos", "ro"),
        ),
        # hardening flags that only take rights away
        ("4", ["nosuid,nodev", "noexec"], "4", V4_DEFAULT + ("nosuid", "nodev", "noexec")),
    ],
)
def test_merge(vers, user, expected_vers, expected):
    merged = nfs_mount_options(vers, user)
    assert merged.vers == expected_vers
    assert merged.options == expected
    assert merged.joined() == ",".join(expected)


@pytest.mark.parametrize(
    "user, named",
    [
        # unknown options and generic mount flags that are not NFS options
        (["exec"], "mount option 'exec' is not allowed"),
        (["suid"], "mount option 'suid' is not allowed"),
        (["dev"], "mount option 'dev' is not allowed"),
        # a comma smuggles a second option into the -o argument
        (["vers=4,exec=x"], "mount option 'exec' is not allowed"),
        (["sec=sys,krb5"], "mount option 'krb5' is not allowed"),
        # shell metacharacters and blanks inside names and values
        (["hard;reboot"], "mount option 'hard;reboot' is not allowed"),
        (["timeo=$(reboot)"], "invalid value '$(reboot)' for timeo"),
        (["timeo=`id`"], "invalid value '`id`' for timeo"),
        (["timeo=600 retrans=2"], "invalid value '600 retrans=2' for timeo"),
        (["clientaddr=1.2.3.4;id"], "invalid value '1.2.3.4;id' for clientaddr"),
        (["sec=sys|krb5"], "invalid value 'sys|krb5' for sec"),
        (["vers=4 -o exec"], "invalid value '4 -o exec' for vers"),
        (["proto=tcp\nexec"], "invalid value 'tcp\\nexec' for proto"),
        # values out of range or of the wrong kind
        (["vers=5"], "invalid value '5' for vers; allowed: 3, 4, 4.0, 4.1, 4.2"),
        (["nconnect=17"], "invalid value '17' for nconnect; allowed: an integer from 1 to 16"),
        (["timeo=-1"], "invalid value '-1' for timeo"),
        (["timeo"], "invalid value '' for timeo"),
        (["hard=1"], "hard takes no value"),
        # two different choices for one setting
        (["hard", "soft"], "mount options 'hard' and 'soft' conflict"),
        (["vers=3", "nfsvers=4"], "mount options 'vers=3' and 'nfsvers=4' conflict"),
        (["ro", "rw"], "mount options 'ro' and 'rw' conflict"),
    ],
)
def test_rejected(user, named):
    with pytest.raises(MountOptionError) as caught:
        nfs_mount_options("4", user)
    assert named in str(caught.value)


def test_unknown_option_error_lists_allowed_options():
    with pytest.raises(MountOptionError) as caught:
        nfs_mount_options("4", ["exec"])
    message = str(caught.value)
    assert "mount option 'exec' is not allowed" in message
    for name in ("actimeo", "hard", "noac", "vers", "nconnect"):
        assert name in message.split("allowed options:")[1]


def test_bad_version_is_rejected():
    with pytest.raises(MountOptionError, match="NFS version '2' is invalid; allowed: 3, 4"):
        nfs_mount_options("2")


def test_value_of_an_unknown_option_is_not_echoed():
    # CSI mount flags may carry credentials; only the option's name is reported.
    with pytest.raises(MountOptionError) as caught:
        nfs_mount_options("4", ["password=hunter2"])
    assert "mount option 'password' is not allowed" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "user, expected",
    [
        ([], V4_DEFAULT + ("ro",)),
        (["noac", "ro"], V4_DEFAULT + ("noac", "ro")),  # the user's own ro is the same choice
    ],
)
def test_read_only_adds_ro(user, expected):
    assert nfs_mount_options("4", user, read_only=True).options == expected


def test_read_only_contradicted_by_user_rw():
    with pytest.raises(MountOptionError, match="mount option 'rw' contradicts the read-only request"):
        nfs_mount_options("4", ["rw"], read_only=True)
