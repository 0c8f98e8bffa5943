"""Devanagari and Roman Hinglish spelling normalisation for the NLU pipeline.

People write the same Hindi word as बिजली, bijli or bijlee, and नहीं, nahi, nhi or
nahin. ``HinglishNormaliser`` rewrites each token's lemma (which the
CountVectorsFeaturizers read) to one rough Roman spelling, so that training
examples in one script also teach the other. Token text and offsets are kept,
so entity extraction is untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_CONSONANTS = {
    "क": "k",
    "ख": "kh",
    "ग": "g",
    "घ": "gh",
    "ङ": "n",
    "च": "ch",
    "छ": "chh",
    "ज": "j",
    "झ": "jh",
    "ञ": "n",
    "ट": "t",
    "ठ": "th",
    "ड": "d",
    "ढ": "dh",
    "ण": "n",
    "त": "t",
    "थ": "th",
    "द": "d",
    "ध": "dh",
    "न": "n",
    "प": "p",
    "फ": "f",
    "ब": "b",
    "भ": "bh",
    "म": "m",
    "य": "y",
    "र": "r",
    "ल": "l",
    "व": "v",
    "श": "sh",
    "ष": "sh",
    "स": "s",
    "ह": "h",
    "क़": "k",
    "ख़": "kh",
    "ग़": "g",
    "ज़": "j",
    "ड़": "r",
    "ढ़": "rh",
    "फ़": "f",
}
_NUKTA_FORMS = {"क": "क़", "ख": "ख़", "ग": "ग़", "ज": "ज़", "ड": "ड़", "ढ": "ढ़", "फ": "फ़"}
_VOWELS = {
    "अ": "a",
    "आ": "a",
    "इ": "i",
    "ई": "i",
    "उ": "u",
    "ऊ": "u",
    "ऋ": "ri",
    "ए": "e",
    "ऐ": "ai",
    "ओ": "o",
    "औ": "au",
    "ऍ": "e",
    "ऑ": "o",
}
_SIGNS = {
    "ा": "a",
    "ि": "i",
    "ी": "i",
    "ु": "u",
    "ू": "u",
    "ृ": "ri",
    "े": "e",
    "ै": "ai",
    "ो": "o",
    "ौ": "au",
    "ॅ": "e",
    "ॉ": "o",
}
_NASALS = {"ं", "ँ"}
_VIRAMA = "्"
_NUKTA = "़"
_VISARGA = "ः"
_SCHWA = "ə"
_DEVANAGARI = re.compile(r"[\u0900-\u097F]")
_DEVANAGARI_DIGITS = str.maketrans("०१२३४५६७८९", "0123456789")


def romanise(word: str) -> str:
    """Transliterate one Devanagari word to a rough Hinglish spelling (बिजली -> bijli)."""
    # Each unit is [consonant, vowel, nasal]; the vowel is _SCHWA for the inherent a.
    units: list[list[str]] = []
    chars = list(word.translate(_DEVANAGARI_DIGITS))
    for i, char in enumerate(chars):
        if char == _NUKTA and units and chars[i - 1] in _NUKTA_FORMS:
            units[-1][0] = _CONSONANTS[_NUKTA_FORMS[chars[i - 1]]]
        elif char in _CONSONANTS:
            units.append([_CONSONANTS[char], _SCHWA, ""])
        elif char in _VOWELS:
            units.append(["", _VOWELS[char], ""])
        elif char in _SIGNS and units:
            units[-1][1] = _SIGNS[char]
        elif char == _VIRAMA and units:
            units[-1][1] = ""
        elif char in _NASALS and units:
            units[-1][2] = "n"
        elif char == _VISARGA and units:
            units[-1][2] = "h"
        elif not _DEVANAGARI.match(char):
            units.append([char, "", ""])
    # Hindi drops the inherent a at the end of a word and in V C a C V (kamara -> kamra).
    if units and units[-1][1] == _SCHWA and units[-1][0]:
        units[-1][1] = ""
    for i in range(len(units) - 2, 0, -1):
        before, this, after = units[i - 1], units[i], units[i + 1]
        if this[1] == _SCHWA and not this[2] and (before[1] or before[2]) and after[0] and after[1]:
            this[1] = ""
    # A nasal at the very end is rarely typed in Roman (नहीं -> nahi, में -> me).
    if units and units[-1][2] == "n":
        units[-1][2] = ""
    return "".join(c + ("a" if v == _SCHWA else v) + n for c, v, n in units)


def normalise_roman(word: str) -> str:
    """Fold common Roman Hinglish spelling variants (bijlee -> bijli, paisa -> pesa)."""
    word = word.lower()
    word = word.replace("ee", "i").replace("oo", "u").replace("ph", "f")
    word = re.sub(r"c(?!h)", "k", word)
    word = word.replace("w", "v").replace("z", "j").replace("q", "k")
    # hai/he, paisa/pesa, kaise/kese, aur/or are typed both ways.
    word = word.replace("ai", "e").replace("au", "o")
    return re.sub(r"(\D)\1+", r"\1", word)


# Words written differently for the same meaning, folded onto one word after the spelling rules
# above: Awadhi and Bhojpuri forms onto standard Hindi (hamar -> mera, ketna -> kitna,
# ba -> hai), SMS shorthand onto the full word (pymnt -> payment, rcpt -> receipt), and English
# written in Devanagari onto the English word (पेमेंट -> payment, रिसीप्ट -> receipt). Roman and
# Devanagari words have separate tables: लाइट romanises to "let", which must not turn the English
# "let" into "light". Keys and values go through the same spelling rules when the tables are built.
_ROMAN_WORDS = {
    # Awadhi / Bhojpuri in Roman letters
    "mera": "hamar hamaar hamra humar humra",
    "mere": "hamre hamare humre",
    "mujhe": "humka hamka humko hamko humke hamke",
    "aapka": "tohar tohaar tohra tumhar tumhaar",
    "aap": "raua rauwa rauaa",
    "kitna": "ketna ketana ktna",
    "kitne": "ketne",
    "itna": "etna etana",
    "hai": "ba baa bani baani ahai h hy",
    "nahi": "nahin naahi naahin nhi nai ni nahee nikhe naikhe",
    "aata": "aavat aawat aavt aavta",
    "aaya": "aava aawa aail ail",
    "gaya": "gail gael gayil gawa gava",
    "bijli": "bijuri bijri bijuli bijlee bjli",
    "kyu": "kahe kaahe",
    "kaise": "kaisan kaisn kse",
    "chahiye": "chahi chaahi chahin chahie chaiye chaheye chahiy",
    "mila": "milal milla",
    "diya": "dihal dihli dihin dihle dihlin dehli",
    "bhara": "bharle bharli bharlin bharal",
    "dikha": "dikhat dekhawat dekhat dikhaat",
    "abhi": "abahin abahi abbi",
    "subah": "sabere savere sabera subha",
    "lekin": "bakir baakir lekn",
    "koi": "kauno kono kouno",
    "yaha": "ihan ihaan yahan",
    "batao": "batai batain bataen batav batawa btao btaao bta",
    "karo": "kro krdo",
    "karna": "krna",
    "karne": "krne",
    "kar": "kr",
    "karu": "kari karin",
    "jayega": "jaai jaayi",
    "hoga": "hoi hoee",
    "purana": "puranka purnaka",
    "naya": "nayka nayaka nava",
    "bill": "bl bilwa bilva",
    "paisa": "pyse paisava",
    # SMS shorthand and misspellings
    "payment": "pymnt pymt pmnt pmt paymnt paymt pyment paymant",
    "receipt": "rcpt recpt reciept reciet receit recipt",
    "raseed": "rsd rasidiya",
    "amount": "amt amnt",
    "account": "acct accnt acnt acount akount",
    "number": "nmbr numbr nbr nmber numbar nambar",
    "connection": "cnctn conection connecton kanekshan cnxn",
    "disconnection": "dscnctn disconection",
    "light": "lyt lite lght",
    "please": "plz pls plzz plss plez",
    "thanks": "thx thnx tnx thnks thanx thnq",
    "message": "msg mssg mesage",
    "kab": "kb",
    "meter": "mtr mitar",
    "balance": "bal blnc balence balanc",
    "check": "chk chek chck",
    "prepaid": "prepd pripaid",
    "wrong": "wrng",
    "galat": "glt galt",
    "reading": "rdng redng",
    "bahut": "bht bahot bhut bohot bhot",
    "jyada": "jyda jada jaada",
    "human": "hmn",
    "talk": "tlk",
    "customer": "cstmr custmr",
    "agent": "agnt",
    "help": "hlp",
    "english": "eng inglish",
    "hindi": "hndi",
    "good": "gud gd",
    "morning": "mrng mrg mornin",
    "night": "nite nyt",
    "updated": "updtd",
    "reflected": "rflctd",
    "not": "nt",
    "send": "snd",
    "update": "updt",
}
_DEVANAGARI_WORDS = {
    # Awadhi / Bhojpuri in Devanagari
    "mera": "हमार हमरा",
    "mere": "हमरे",
    "mujhe": "हमका हमको",
    "aapka": "तोहार तोहरा",
    "aap": "रउआ रउवा",
    "kitna": "केतना",
    "kitne": "केतने",
    "itna": "एतना",
    "hai": "बा बानी अहै",
    "nahi": "नइखे नाहिं",
    "aata": "आवत",
    "aaya": "आइल",
    "gaya": "गइल गवा",
    "bijli": "बिजुरी बिजरी",
    "kyu": "काहे",
    "kaise": "कइसे कईसे",
    "chahiye": "चाहीं",
    "mila": "मिलल",
    "diya": "देहलीं दिहल दिहलीं",
    "bhara": "भरले भरलीं",
    "dikha": "देखावत देखात",
    "lekin": "बाकिर",
    "abhi": "अबहिन",
    "subah": "सबेरे",
    "koi": "कौनो",
    "yaha": "इहाँ",
    "uska": "ओकर",
    "tha": "रहल रहलीं",
    "purana": "पुरनका",
    "naya": "नयका नवा",
    "batao": "बताईं बतावा",
    "karu": "करीं",
    "bharu": "भरीं",
    "karao": "कराईं",
    "jayega": "जाई",
    "hoga": "होई",
    "bill": "बिलवा",
    "raseed": "रसीदिया",
    "light": "लाइटिया लाइट",
    "kata": "कटल काटल",
    # English written in Devanagari
    "payment": "पेमेंट पेमेन्ट",
    "receipt": "रिसीप्ट रिसिप्ट",
    "account": "अकाउंट एकाउंट अकाउन्ट",
    "number": "नंबर नम्बर",
    "balance": "बैलेंस बैलेन्स",
    "prepaid": "प्रीपेड",
    "meter": "मीटर",
    "connection": "कनेक्शन",
    "disconnect": "डिस्कनेक्ट",
    "reconnection": "रीकनेक्शन",
    "thank": "थैंक",
    "thanks": "थैंक्स",
    "you": "यू",
    "much": "मच",
    "ok": "ओके",
    "done": "डन",
    "bye": "बाय",
    "good": "गुड",
    "night": "नाइट",
    "evening": "ईवनिंग",
    "yes": "यस",
    "not": "नॉट",
    "now": "नाउ",
    "customer": "कस्टमर",
    "care": "केयर",
    "fraud": "फ्रॉड",
    "genuine": "जेनुइन जेन्युइन",
    "reply": "रिप्लाई",
    "english": "इंग्लिश",
    "language": "लैंग्वेज",
    "change": "चेंज",
    "power": "पावर",
    "electricity": "इलेक्ट्रिसिटी",
    "wrong": "रॉन्ग",
    "reading": "रीडिंग",
    "very": "वेरी",
    "debit": "डेबिट",
    "pending": "पेंडिंग",
    "show": "शो",
    "check": "चेक",
    "send": "सेंड",
    "online": "ऑनलाइन",
    "new": "न्यू",
    "old": "ओल्ड",
    "consumer": "कंज्यूमर",
    "id": "आईडी",
    "my": "माय",
    "total": "टोटल",
    "due": "ड्यू",
    "amount": "अमाउंट",
    "current": "करंट",
    "agent": "एजेंट",
    "human": "ह्यूमन",
    "talk": "टॉक",
    "service": "सर्विस",
    "services": "सर्विसेज",
    "please": "प्लीज",
    "update": "अपडेट",
    "message": "मैसेज",
    "supply": "सप्लाई",
    "voltage": "वोल्टेज",
    "fail": "फेल",
    "refund": "रिफंड",
    "hello": "हेलो हैलो",
    "hi": "हाय",
    "officer": "ऑफिसर",
    "kyc": "केवाईसी",
    "otp": "ओटीपी",
    "status": "स्टेटस",
    "transaction": "ट्रांजैक्शन",
    "upi": "यूपीआई",
    "recharge": "रिचार्ज",
    "cash": "कैश",
    "counter": "काउंटर",
    "office": "ऑफिस",
    "mobile": "मोबाइल",
    "phone": "फोन फ़ोन",
    "call": "कॉल",
    "website": "वेबसाइट",
    "problem": "प्रॉब्लम",
    "complaint": "कंप्लेंट",
    "menu": "मेन्यू",
    "smart": "स्मार्ट",
    "morning": "मॉर्निंग",
}


def _fold(groups: dict[str, str], spell: Callable[[str], str]) -> dict[str, str]:
    """{spelling of a variant: spelling of its word}; a variant claimed by two words is a bug."""
    table: dict[str, str] = {}
    for word, variants in groups.items():
        target = normalise_roman(word)
        for variant in variants.split():
            key = spell(variant)
            if table.get(key, target) != target:
                raise ValueError(f"{variant!r} folds onto both {table[key]!r} and {target!r}")
            if key != target:
                table[key] = target
    return table


def _spell_devanagari(word: str) -> str:
    return normalise_roman(romanise(word))


_ROMAN_TABLE = _fold(_ROMAN_WORDS, normalise_roman)
_DEVANAGARI_TABLE = _fold(_DEVANAGARI_WORDS, _spell_devanagari)


def normalise_word(word: str) -> str:
    """One comparable spelling for a Devanagari or Roman word (हमार, hamar, mera -> mera)."""
    if _DEVANAGARI.search(word):
        spelled = _spell_devanagari(word)
        return _DEVANAGARI_TABLE.get(spelled, spelled)
    spelled = normalise_roman(word)
    return _ROMAN_TABLE.get(spelled, spelled)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class HinglishNormaliser(GraphComponent):
    """Sets each text token's lemma to its normalised spelling; place after the tokenizer."""

    @classmethod
    def required_components(cls) -> list[type]:
        """Needs tokens."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """No options."""
        return {}

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> HinglishNormaliser:
        """Creates the component (nothing to train or store)."""
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises the training examples' tokens."""
        for message in training_data.training_examples:
            self._normalise(message)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Normalises incoming messages' tokens."""
        for message in messages:
            self._normalise(message)
        return messages

    @staticmethod
    def _normalise(message: Message) -> None:
        for token in message.get(TOKENS_NAMES[TEXT]) or []:
            token.lemma = normalise_word(token.text)
