"""Scrape, page words: what product pages write, in many languages, and what their URLs
name. Text in, answers out (no markup): buy buttons and sold-out notices, labelled product
references ("Article number", "Cod produs", "商品番号" ...), brand labels, and the ids a
product URL carries. ``fallback`` reads the page's elements and asks these.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from garment.scrape import schemaorg

#: A labelled product reference: "Article number: 12345", "Product Code - 12345",
#: "Ref. AB-12", "ASIN : B0..", "Bestellnummer 123" (a model number is the maker's, not
#: the shop's reference, and is not among them).
SKU_LABEL = re.compile(
    r"(?<!\w)(?:article\s*(?:number|no\.?|code)|item\s*(?:number|no\.?|#|code)|"
    r"product\s*(?:code|number|id|no\.?|ref(?:erence)?)|style\s*(?:code|number|no\.?)|"
    r"sku|asin|ref(?:erence|\.)?|art(?:ikel)?[.\-]?\s*nr\.?|artikelnummer|bestellnummer|"
    r"r[ée]f[ée]rence|c[óo]digo(?:\s+(?:del\s+)?producto)?|codice(?:\s+articolo)?|"
    r"numer\s+produktu|[šs]ifra(?:\s+artikla)?|k[óo]d(?:\s+produktu)?|код(?:\s+товара)?|"
    r"артикул|商品編號|商品编号|型號|cod\s+produs|term[ée]kk[óo]d|cikksz[áa]m|productcode|"
    r"artikelcode|tuotekoodi|tuotenumero|[üu]r[üu]n\s+kodu|κωδικός(?:\s+προϊόντος)?|"
    r"m[ãa]\s+s[ảa]n\s+ph[ẩa]m|kode\s+produk|קוד\s+(?:מוצר|פריט)|מק[\"״]ט|商品番号|品番|"
    r"상품\s*번호|상품\s*코드|id\s+(?:del?\s+|do\s+)?produ(?:to|it|cto|tto)|"
    # A classified ad's number ("Ad #", "Anzeige: 278526196", "Annonce n°").
    r"ad\s*(?:#|no\.?|number|id)|listing\s*(?:id|number|#)|anzeige(?:nnummer|n-?nr\.?)?|"
    r"inserat(?:snummer)?|annonce\s*(?:n°|no\.?))"
    # After the label a space or a colon, never a bare hyphen ("SKU-0002" is one word).
    # CJK pages write a full-width colon.
    r"[\u200e\u200f]*[\s:：#.–—][\s:：#.\-–—\u200e\u200f]{0,8}([A-Z0-9][A-Z0-9\-_/.]{2,30})(?!\w)",
    re.I)
#: Buy buttons and out-of-stock notices in the languages garment's vocabulary speaks.
BUY = re.compile(
    r"add\s+to\s+(your\s+|my\s+)?(shopping\s+)?(cart|bag|basket|trolley)|buy\s+(it\s+)?now|in\s+den\s+(warenkorb|einkaufswagen)|"
    r"jetzt\s+kaufen|ajouter\s+au\s+panier|(a[ñn]adir|agregar)\s+al?\s+(la\s+)?(cesta|bolsa|carrito)|"
    r"adicionar\s+ao\s+carrinho|aggiungi\s+al\s+carrello|(toevoegen\s+aan|in)\s+(de\s+)?winkelwagen|"
    r"(dodaj\s+)?do\s+koszyka|kup\s+teraz|l[äa]gg\s+i\s+varukorgen|lis[äa][äa]\s+ostoskoriin|"
    r"(dodaj\s+)?[uv]\s+ko[šs]aric[uo]|do\s+ko[šs][íi]ku?|sepete\s+ekle|kos[áa]rba|"
    r"ad[ăa]ug[ăa]\s+[îi]n\s+co[șs]|в\s+корзину|купить|добави\s+в\s+количката|ielikt\s+groz[āa]|"
    r"i\s+krep[šs]el[īi]|加入購物車|加入购物车|立即購買|立即购买|カートに入れる|장바구니|구매하기|"
    r"أضف\s+إلى\s+(السلة|الحقيبة|عربة\s+التسوق)|اشتر\s+الآن|"
    r"in\s+den\s+(einkaufs)?korb|jetzt\s+bestellen|acheter\s+maintenant|comprar\s+ahora|"
    r"a[ñn]adir\s+a\s+la\s+cesta|acquista\s+ora|compra\s+ora|nu\s+kopen|k[öo]p\s+nu|"
    r"l[äa]gg\s+i\s+kundvagnen|l[æa]g\s+i\s+(kurv|handlekurv)|legg\s+i\s+handlekurv|"
    r"lis[äa][äa]\s+koriin|vlo[žz]it\s+do\s+ko[šs][íi]ku|k[úu]pi[ťt]|koupit|satın\s+al|"
    r"προσθήκη\s+στο\s+καλάθι|в\s+кошик|купити|加入购物袋|カートに追加|今すぐ購入|"
    r"th[êe]m\s+v[àa]o\s+gi[ỏo]|mua\s+ngay|beli\s+sekarang|masukkan\s+(ke\s+)?keranjang|"
    r"הוס(ף|פה)\s+לסל|קנה\s+עכשיו|"
    # One-word buttons ("Buy", "Order" in South Slavic languages), as whole words only.
    r"(?<!\w)(kupi|naro[čc]i|naru[čc]i)(?!\w)", re.I)
SOLD_OUT = re.compile(r"\b(out\s+of\s+stock|sold\s+out|currently\s+unavailable|"
                      r"no\s+longer\s+available|ausverkauft|nicht\s+(mehr\s+)?verf[üu]gbar|"
                      r"derzeit\s+nicht\s+verf[üu]gbar|non\s+disponibile|(actuellement\s+)?indisponible|"
                      r"[ée]puis[ée]|"
                      r"rupture\s+de\s+stock|agotado|esaurito|uitverkocht|"
                      r"nicht\s+auf\s+lager|sin\s+(stock|existencias)|esgotado|indispon[íi]vel|"
                      r"slutsåld|udsolgt|utsolgt|loppuunmyyty|vyprod[áa]no|vypredan[éey]|"
                      r"wyprzedan[ey]|brak\s+w\s+magazynie|elfogyott|t[üu]kendi|stokta\s+yok|"
                      r"εξαντλήθηκε|немає\s+в\s+наявності|h[ếe]t\s+h[àa]ng|stok\s+habis|"
                      r"нет\s+в\s+наличии)\b|품절|售完|缺貨|缺货|在庫切れ|在庫なし|สินค้าหมด|"
                      r"نفدت\s+الكمية|אזל\s+מהמלאי", re.I)
#: A label of a product's brand (group 1), or of its maker (group 2: a brand when the page
#: names no other), alone in its element.
BRAND_LABEL = re.compile(
    r"^[\s\u200e\u200f]*(?:(brand|brand\s+name|marke|marque|marca|merk|märke|merkki|značka|"
    r"znamka|marka|márka|бренд|品牌|ブランド|브랜드)|(manufacturer|hersteller|fabricant|"
    r"fabricante|produttore|proizvajalec|výrobce|producent|gyártó|производитель))"
    r"[\s\u200e\u200f]*[:：]?[\s\u200e\u200f]*$", re.I)


def labelled_reference(text: str, url: str = "") -> str | None:
    """The first labelled reference, unless another labelled one is the URL's id (the
    shop's own: "ASIN" beats the maker's "Référence" and a coupon's "codice")."""
    ids = set(url_ids(url)) if url else set()
    refs = []
    for m in SKU_LABEL.finditer(text):
        ref = m.group(1).rstrip("./-")
        if re.search(r"\d", ref) and not schemaorg.PLACEHOLDER.match(ref):
            if ref in ids or not ids:  # the URL's own, or no URL id to look for
                return ref
            refs.append(ref)
            if len(refs) >= 20:
                break
    return refs[0] if refs else None


#: Query parameters that name the product in a URL.
ID_PARAMS = frozenset({"id", "pid", "productid", "product_id", "itemid", "item_id", "item",
                       "sku", "articleid", "art", "prod"})
#: A reference written with separators ("1002/710", "992.775.08").
FORMATTED_REF = re.compile(r"(?<![\w/.])\d{2,}(?:[/.]\d{2,}){1,3}(?![\w/]|\.\d)")


def url_ids(url: str) -> list[str]:
    """Identifier-like tokens of a product URL (at least 5 characters, at least 4 of
    them digits): id-like query values first, then path segments from the last; a token
    that joins letters to a long number ("c7200a278526196") is followed by its numbers of
    5 digits or more (the id a slug embeds)."""
    parts = urlsplit(url)
    query = [v for k, v in parse_qsl(parts.query) if k.lower() in ID_PARAMS]
    segments = [t for seg in reversed(parts.path.split("/"))
                for t in reversed(re.split(r"[^A-Za-z0-9]+", seg.rsplit(".", 1)[0]))]
    out: list[str] = []
    for token in query + segments:
        if len(token) >= 5 and sum(c.isdigit() for c in token) >= 4:
            runs = re.findall(r"\d{5,}", token) if not token.isdigit() else []
            out.extend(t for t in (token, *runs) if t not in out)
    return out


def image_id(url: str, images: list[str]) -> str | None:
    """The URL's id that the product's first pictures are filed under as well
    (``.../987929/i6d94.jpg`` for ``...-987929.html``): a shop names a product's pictures
    by its reference."""
    ids = url_ids(url)
    if not ids:
        return None
    tokens = {t for u in images[:3] for t in re.split(r"[^A-Za-z0-9]+", urlsplit(u).path)}
    return next((i for i in ids if i in tokens), None)


def url_reference(url: str, text: str) -> tuple[str | None, str | None]:
    """(the URL's id as the page writes it with separators, the URL's id the page shows
    as is); None where the page shows neither."""
    ids = url_ids(url)
    for m in FORMATTED_REF.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if len(digits) >= 6 and any(re.search(rf"\D?\d{{0,2}}{digits}$", i) for i in ids):
            return m.group(), None
    words = set(re.findall(r"[A-Za-z0-9]+", text))
    return None, next((i for i in ids if i in words), None)


def availability(text: str) -> str | None:
    """InStock when the page shows a buy button, OutOfStock when it says so instead."""
    if SOLD_OUT.search(text) and not BUY.search(text):
        return "OutOfStock"
    if BUY.search(text):
        return "InStock"
    return "OutOfStock" if SOLD_OUT.search(text) else None
