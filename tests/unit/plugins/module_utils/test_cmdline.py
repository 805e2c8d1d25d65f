import pytest

from ansible_collections.kernel.kexec.plugins.module_utils import _cmdline as cmdline
from ansible_collections.kernel.kexec.plugins.module_utils._errors import KexecError


@pytest.mark.parametrize("text, tokens", [
    ("root=/dev/sda1  ro\tquiet\n", ["root=/dev/sda1", "ro", "quiet"]),
    ('foo="a b" bar', ['foo="a b"', "bar"]),
    ('"quoted whole=x" ro', ['"quoted whole=x"', "ro"]),
    ('a="x y"z b', ['a="x y"z', "b"]),
    ('dyndbg="file drm* +p"  -- single', ['dyndbg="file drm* +p"', "--", "single"]),
    ("   ", []),
])
def test_split_follows_kernel_quoting(text, tokens):
    assert cmdline.split(text) == tokens


def test_join_of_split_only_normalises_white_space_outside_quotes():
    assert cmdline.join(cmdline.split('  ro   foo="a   b"\tquiet ')) == 'ro foo="a   b" quiet'


@pytest.mark.parametrize("text", ['foo="a b', 'ro "', 'a="x" b="y'])
def test_split_refuses_unclosed_quote(text):
    with pytest.raises(KexecError, match="unclosed double quote"):
        cmdline.split(text)


@pytest.mark.parametrize("token, name", [
    ("root=/dev/sda1", "root"),
    ("quiet", "quiet"),
    ('foo="a=b c"', "foo"),
    ('"quoted whole=x"', "quoted whole"),
    ("console=ttyS0,115200n8", "console"),
])
def test_arg_name(token, name):
    assert cmdline.arg_name(token) == name


BASE = "BOOT_IMAGE=/vmlinuz root=/dev/sda1 console=tty0 ro console=ttyS0 quiet crashkernel=256M"


@pytest.mark.parametrize("text, append, remove, expected", [
    # append replaces every argument of the same name, in the place of the first one
    (BASE, ["console=ttyS1,115200"], [],
     "BOOT_IMAGE=/vmlinuz root=/dev/sda1 console=ttyS1,115200 ro quiet crashkernel=256M"),
    (BASE, ["crashkernel=512M"], [], "BOOT_IMAGE=/vmlinuz root=/dev/sda1 console=tty0 ro console=ttyS0 quiet crashkernel=512M"),
    # several values of a repeatable parameter are all kept, in the order given
    (BASE, ["console=tty0", "console=ttyS0,115200"], [],
     "BOOT_IMAGE=/vmlinuz root=/dev/sda1 console=tty0 console=ttyS0,115200 ro quiet crashkernel=256M"),
    # a new name goes to the end; an existing flag stays where it is; duplicates in append are kept once
    ("ro", ["quiet"], [], "ro quiet"),
    ("quiet ro", ["quiet", "quiet"], [], "quiet ro"),
    # remove drops by name, whatever the value, quoted or not
    (BASE, [], ["console", "crashkernel", "BOOT_IMAGE"], "root=/dev/sda1 ro quiet"),
    ('foo="a b" ro', [], ["foo"], "ro"),
    ("ro quiet", [], ["splash"], "ro quiet"),
    # remove and append together: the appended value survives its own name being removed
    ("ro quiet crashkernel=1G", ["crashkernel=256M"], ["crashkernel", "quiet"], "ro crashkernel=256M"),
    # init's arguments after '--' stay after it, untouched; appends go before '--'
    ("ro debug -- single debug", ["nomodeset", "debug=1"], ["single"], "ro debug=1 nomodeset -- single debug"),
    ("ro -- quiet", [], ["quiet"], "ro -- quiet"),
    ("", ["quiet"], [], "quiet"),
])
def test_edit(text, append, remove, expected):
    assert cmdline.edit(text, append=append, remove=remove) == expected


@pytest.mark.parametrize("text, append, remove", [
    (BASE, ["console=ttyS1", "quiet"], ["ro"]),
    (BASE, ["console=tty0", "console=ttyS0"], []),
    ("ro debug -- single", ["debug=1", 'foo="a b"'], ["single"]),
])
def test_edit_is_idempotent(text, append, remove):
    once = cmdline.edit(text, append=append, remove=remove)
    assert cmdline.edit(once, append=append, remove=remove) == once
    assert cmdline.has_arguments(once, append)


@pytest.mark.parametrize("token", ['foo="a b"', "quiet", "console=ttyS0,115200n8"])
def test_check_argument_accepts_one_token(token):
    assert cmdline.check_argument(token) == token


@pytest.mark.parametrize("token, message", [
    ("quiet splash", "not a single kernel argument"),
    (" quiet", "not a single kernel argument"),
    ("", "not a single kernel argument"),
    (5, "not a single kernel argument"),
    ('foo="a', "unclosed double quote"),
    ("--", "'--' cannot be appended"),
])
def test_check_argument_refuses(token, message):
    with pytest.raises(KexecError, match=message):
        cmdline.check_argument(token)


def test_edit_refuses_bad_append_before_editing():
    with pytest.raises(KexecError, match="not a single kernel argument"):
        cmdline.edit("ro", append=["a b"])
    with pytest.raises(KexecError, match="'--'"):
        cmdline.edit("ro", append=["--", "single"])


@pytest.mark.parametrize("wanted, present", [
    (["quiet", "ro"], True),
    (['foo="a b"'], True),
    (["quiet", "splash"], False),
    (["console=ttyS0"], False),  # verbatim, not a prefix of console=ttyS0,115200
    (["foo=a b"], False),
    ([], True),
])
def test_has_arguments(wanted, present):
    assert cmdline.has_arguments('ro quiet console=ttyS0,115200 foo="a b"', wanted) is present
