"""The language register a message is written in, and a request to change language.

Pure functions, no Rasa: the slot-mapping validation action and the other actions call them.
Registers: ``hi`` (Devanagari Hindi), ``hinglish`` (Hindi in Roman letters), ``en`` (English).
"""

from __future__ import annotations

import re
import unicodedata

HI = "hi"
HINGLISH = "hinglish"
EN = "en"
REGISTERS = (HI, HINGLISH, EN)
#: Register used before the sender has written anything that shows one.
DEFAULT_REGISTER = HINGLISH

# Words that only Roman-script Hindi uses. Words English shares ("me", "to", "do", "main")
# are left out on purpose: "main menu" and "send me" must stay English.
HINGLISH_WORDS = frozenset(
    """
    kya kyaa kia kiya hai hain h hy ha haan han haa hu hoon hun ho hota hoti hote hua hui
    mera meri mere mra mri mujhe muje mujhko humko hamara hamari hamare apna apni apne aap ap
    aapka aapki tum tumhara hum ye yeh yah wo woh vo iska iski uska uski inka unka kaun kaunsa
    kahan kaha kab kb kaise kese kaisa kaisi kyu kyun kyon kyunki kitna kitne kitni ktna
    bijli bijlee bijali bjli batao bataye bataiye bata btao btado bolo bol baat
    nahi nahin nai nhi nahii mat na bhi aur ya par lekin magar phir fir abhi aaj kal parso
    ka ki ke ko se mein mai mei mujhse isme usme yaha yahan waha wahan
    tha thi raha rahi rahe rha rhi rhe gaya gayi gaye gya gyi aaya aayi aya ayi aa gai
    karo kare karna karni karein kijiye kariye kro kre krna krdo kardo karwa karwao karao
    chahiye chaiye chahie chahte chahta chahti dijiye dedo de lo lena dena dene diya diye
    hoga hogi honge hogya hogaya jama bharna bhar bhara bhugtan kat katega kategi
    kata kati katne kaat kaatna kaatne naya nya naye nayi purana purane purani puraana
    paisa paise pese pase rupay rupaye bakaya baki baaki bakiya wala wali wale
    sahi galat bahut bohot jyada zyada kam thoda sab sabhi kuch kuchh koi kisi kisko
    madad sahayata shukriya dhanyawad dhanyavad dhanyvad namaste namaskar pranam accha acha
    achha theek thik thk haanji ji bhai bhaiya sahab saab didi behen mujhse samjhao samajh
    likho likh bhejo bhej jaldi turant kyuki jab tak wapas vapas milega mila mili
    bataya bataen batayein dikhao dikha lagao laga lagta lagti chalu band gul aana aati aata
    rakam raqam tarikh tareekh mahina mahine ghar bijlighar khata sankhya ank
    """.split()
)

# Words every register uses for this domain ("bill", "ok"): they show no register by themselves.
NEUTRAL_WORDS = frozenset(
    """
    ok okay okk k kk hi hii hello helo hlo hey yes no yess noo thanks thank thx ty pls plz
    please bye menu help bill bills meter account acc a/c no number num nmbr consumer kesco
    uppcl sms whatsapp upi qr otp id sir madam mam dear good morning hindi english hinglish
    """.split()
)

_WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
_DEVANAGARI_LETTER = re.compile(r"[\u0900-\u0963\u0971-\u097F]")


def has_devanagari(text: str) -> bool:
    """True when the text holds at least one Devanagari letter (not just digits)."""
    return _DEVANAGARI_LETTER.search(text) is not None


def detect_register(text: str | None, previous: str | None = None) -> str:
    """The register a message is written in; neutral messages keep ``previous``.

    Devanagari wins; otherwise one Hinglish word makes it Hinglish; otherwise any other word
    makes it English. Numbers, "ok", "hi" and the like show nothing and keep what came before.
    """
    fallback = previous if previous in REGISTERS else DEFAULT_REGISTER
    if not text:
        return fallback
    if has_devanagari(text):
        return HI
    words = _WORD.findall(unicodedata.normalize("NFKC", text).lower())
    if any(word in HINGLISH_WORDS for word in words):
        return HINGLISH
    if any(word not in NEUTRAL_WORDS and len(word) > 1 for word in words):
        return EN
    return fallback


# --------------------------------------------------------------------------- language choice

_HINDI_NAMES = ("hindi", "hindee", "हिंदी", "हिन्दी", "हिंदि")
_ENGLISH_NAMES = (
    "english",
    "englsh",
    "eng",
    "angrezi",
    "angreji",
    "angrezee",
    "अंग्रेजी",
    "अंग्रेज़ी",
    "इंग्लिश",
)
_HINGLISH_NAMES = ("hinglish", "roman", "हिंग्लिश")
_NEGATION_AFTER = re.compile(
    r"^\W*(?:\S+\s+){0,2}?(?:nahi|nahin|nhi|nai|नहीं|नही|not)(?!\w)", re.IGNORECASE
)
_NEGATION_BEFORE = re.compile(
    r"(?:don'?t|do not|dont|can'?t|cannot|no|not|without)\s+(?:\w+\s+){0,2}$", re.IGNORECASE
)
_TOKEN = re.compile(r"[\w\u0900-\u097F]+")


def parse_language_choice(text: str | None) -> str | None:
    """The register a change-language request asks for, or None when it names none.

    "hindi mein baat karo" and "हिंदी में" ask for Devanagari Hindi; "English please" for
    English; "hinglish"/"roman" for Roman Hindi. A named language that is negated ("english
    nahi aati", "I don't understand Hindi") counts against it.
    """
    if not text:
        return None
    lowered = unicodedata.normalize("NFC", text).lower()
    wanted: list[tuple[int, str]] = []
    unwanted: set[str] = set()
    for match in _TOKEN.finditer(lowered):
        token = match.group(0)
        if token in _HINDI_NAMES:
            register = HI
        elif token in _ENGLISH_NAMES:
            register = EN
        elif token in _HINGLISH_NAMES:
            register = HINGLISH
        else:
            continue
        before = lowered[: match.start()]
        after = lowered[match.end() :]
        if _NEGATION_AFTER.match(after) or _NEGATION_BEFORE.search(before):
            unwanted.add(register)
        else:
            wanted.append((match.start(), register))
    choices = [register for _, register in wanted if register not in unwanted]
    if choices:
        return choices[-1]
    # "I don't understand Hindi" asks for the other one when only two are in play.
    if unwanted == {HI}:
        return EN
    if unwanted == {EN}:
        return HI
    return None


__all__ = [
    "DEFAULT_REGISTER",
    "EN",
    "HI",
    "HINGLISH",
    "REGISTERS",
    "detect_register",
    "has_devanagari",
    "parse_language_choice",
]
