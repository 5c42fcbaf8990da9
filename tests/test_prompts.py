"""Prompt classification on text exactly as OpenSSH 9.x prints it to the pty."""

from __future__ import annotations

import pytest

from hy2fa_lab.core.prompts import classify, clean, is_same_question, pending_line
from hy2fa_lab.core.types import PromptKind

TACC_BANNER = (
    "------------------------------------------------------------------\r\n"
    "Welcome to Stampede3. To log in you need your password and your\r\n"
    "TACC token (MFA). Questions about your token code? See the portal.\r\n"
    "------------------------------------------------------------------\r\n"
)


@pytest.mark.parametrize(
    ("output", "kind"),
    [
        ("\r(ola@saga.sigma2.no) One-time password (OATH) for `ola': ", PromptKind.OTP),
        ("\r(ola@olivia.sigma2.no) Password: ", PromptKind.PASSWORD),
        ("\r(u@perlmutter.nersc.gov) Password + OTP: ", PromptKind.PASSWORD),
        ("\r(u@login) Password & verification code: ", PromptKind.PASSWORD),
        ("\r(u@stampede3.tacc.utexas.edu) TACC Token Code: ", PromptKind.OTP),
        ("\r(u@h) Verification code: ", PromptKind.OTP),
        ("\r(u@cosmos.lunarc.lu.se) Please enter your onetime password: ", PromptKind.OTP),
        ("Enter passphrase for key '/home/u/.ssh/id_ed25519': ", PromptKind.PASSPHRASE),
        ("\r(u@h) Say the magic word: ", PromptKind.OTHER),
    ],
)
def test_kinds(output: str, kind: PromptKind) -> None:
    prompt = classify(output)
    assert prompt is not None
    assert prompt.kind is kind
    assert prompt.text == clean(output)  # verbatim, prefix included
    assert prompt.secret


def test_banner_words_never_classify_the_prompt() -> None:
    # TACC's banner says "password" and "token"; only the pending line counts.
    prompt = classify(TACC_BANNER + "\r(u@stampede3.tacc.utexas.edu) Password: ")
    assert prompt is not None
    assert prompt.kind is PromptKind.PASSWORD
    assert "Welcome" not in prompt.text
    assert classify(TACC_BANNER) is None  # a banner alone is no prompt


def test_completed_lines_are_not_prompts() -> None:
    assert classify("Warning: Permanently added '[127.0.0.1]:2222' (ED25519).\r\n") is None
    assert pending_line("") is None
    assert pending_line("abc\r\n   ") is None


def test_duo_menu_keeps_the_whole_question_and_its_options() -> None:
    output = (
        "\r(u@narval.alliancecan.ca) Duo two-factor login for u\n\n"
        "Enter a passcode or select one of the following options:\n\n"
        " 1. Duo Push to XXX-XXX-1234\n 2. Phone call to XXX-XXX-1234\n\n"
        "Passcode or option (1-2): "
    )
    prompt = classify(output)
    assert prompt is not None
    assert prompt.kind is PromptKind.DUO
    assert prompt.text.startswith("(u@narval.alliancecan.ca) Duo two-factor login")
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")


def test_hostkey_question_shows_the_fingerprint() -> None:
    output = (
        "The authenticity of host '[127.0.0.1]:2222 ([127.0.0.1]:2222)' can't be established.\r\n"
        "ED25519 key fingerprint is SHA256:Zm9vYmFyYmF6cXV4.\r\n"
        "This key is not known by any other names.\r\n"
        "Are you sure you want to continue connecting (yes/no/[fingerprint])? "
    )
    prompt = classify(output)
    assert prompt is not None
    assert prompt.kind is PromptKind.HOSTKEY
    assert "SHA256:Zm9vYmFyYmF6cXV4" in prompt.text
    assert prompt.options == ("yes", "no")
    assert not prompt.secret
    again = classify("Please type 'yes', 'no' or the fingerprint: ")
    assert again is not None and again.kind is PromptKind.HOSTKEY


def test_same_question_ignores_the_prefix_but_not_the_words() -> None:
    otp = classify("\r(u@h) Verification code: ")
    otp_again = classify("\r(u@h) Verification code: ")
    password = classify("\r(u@h) Password: ")
    assert otp and otp_again and password
    assert is_same_question(otp, otp_again)
    assert not is_same_question(otp, password)


def test_ansi_and_carriage_returns_are_cleaned() -> None:
    assert clean("\x1b[1mbold\x1b[0m\r\nnext\rover") == "bold\nover"


DUO_MENU = (
    "Duo two-factor login for u\n\n"
    "Enter a passcode or select one of the following options:\n\n"
    " 1. Duo Push to XXX-XXX-1234\n 2. Phone call to XXX-XXX-1234\n\n"
)
NUMBERED_BANNER = (
    "Welcome. Before you log in:\r\n"
    " 1. Duo Push to the attacker's phone\r\n"
    " 2. Phone call to 555-0100\r\n\r\n"
)


@pytest.mark.parametrize("banner", ["", TACC_BANNER, NUMBERED_BANNER])
def test_a_duo_menu_sent_as_instructions_gives_its_options(banner: str) -> None:
    # A server that sends the menu as keyboard-interactive instruction text: OpenSSH prints it
    # (logit, "\r\n" endings) on the lines before "(user@host) Passcode or option (1-N): ".
    output = banner + DUO_MENU.replace("\n", "\r\n") + "\r\r\n\r(u@h) Passcode or option (1-2): "
    prompt = classify(output)
    assert prompt is not None
    assert prompt.kind is PromptKind.DUO
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")
    assert prompt.text.startswith("Duo two-factor login for u\n")
    assert prompt.text.endswith("\n(u@h) Passcode or option (1-2): ")
    assert "Welcome" not in prompt.text and "attacker" not in prompt.text  # no banner


@pytest.mark.parametrize("banner", [TACC_BANNER, NUMBERED_BANNER])
def test_a_duo_menu_in_the_question_never_takes_banner_lines(banner: str) -> None:
    output = banner + "\r(u@h) " + DUO_MENU + "Passcode or option (1-2): "
    prompt = classify(output)
    assert prompt is not None
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")
    assert prompt.text.startswith("(u@h) Duo two-factor login for u\n")


@pytest.mark.parametrize("banner", ["", TACC_BANNER, NUMBERED_BANNER])
def test_numbered_banner_lines_are_never_a_duo_menu(banner: str) -> None:
    # No menu at all (neither in the question nor as instructions): the numbered lines before
    # the question are the banner's, not options.
    prompt = classify(NUMBERED_BANNER + banner + "\r(u@h) Passcode or option (1-2): ")
    assert prompt is not None
    assert prompt.kind is PromptKind.DUO
    assert prompt.options == ()
    assert prompt.text == "(u@h) Passcode or option (1-2): "


def test_a_duo_menu_after_a_refused_push_is_the_new_menu_only() -> None:
    # Duo's refusal, then the menu again (as instructions): the old lines are not the question.
    output = (
        "Login timed out.\r\n"
        + DUO_MENU.replace("\n", "\r\n")
        + "\r\r\n\r(u@h) Passcode or option (1-2): "
    )
    prompt = classify(output)
    assert prompt is not None
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")
    assert "timed out" not in prompt.text


def test_a_duo_menu_without_the_prefix_of_openssh_before_8_5() -> None:
    output = NUMBERED_BANNER + DUO_MENU.replace("\n", "\r\n") + "Passcode or option (1-2): "
    prompt = classify(output)
    assert prompt is not None
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")
    assert prompt.text == DUO_MENU + "Passcode or option (1-2): "


def test_an_earlier_duo_question_is_not_where_the_menu_starts() -> None:
    # Output holding a question already asked, then the menu again as instructions.
    output = (
        "\r(u@h) Passcode or option (1-2): 111111\r\n"
        + DUO_MENU.replace("\n", "\r\n")
        + "\r(u@h) Passcode or option (1-2): "
    )
    prompt = classify(output)
    assert prompt is not None
    assert prompt.options == ("Duo Push to XXX-XXX-1234", "Phone call to XXX-XXX-1234")
    assert prompt.text == DUO_MENU + "(u@h) Passcode or option (1-2): "
