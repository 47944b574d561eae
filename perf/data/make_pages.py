"""Build the annotated page set of ``perf/browse.py``.

The benchmark calls ``build_pages`` into a temporary folder on every run (the
output is deterministic, so runs compare); to look at the pages themselves:

    .venv/bin/python -m perf.data.make_pages OUT_DIR

Ten pages in five common layouts (news article, blog in div soup, reference
page with infobox and navbox, recipe, documentation), each wrapped in the
chrome real sites carry: long menus, inline scripts and styles, cookie
banners, ads, newsletter boxes, related links, comments and footers. The
text is original. ``annotations.json`` lists per page the snippets a good
extractor must keep (main text, including the last paragraph and lists) and
must drop (boilerplate).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

TOPICS = [
    {
        "slug": "bellmoor-lighthouse",
        "layout": "news",
        "title": "Bellmoor lighthouse turns 160 with a night of open doors",
        "paragraphs": [
            "The Bellmoor lighthouse was first lit on 14 March 1861, and on Saturday the granite tower opened its doors after dark for the first time in its history.",
            "Visitors climbed the 142 steps to the lantern room, where a second-order Fresnel lens still turns on a bath of mercury that the last keepers topped up by hand.",
            "The tower is painted in red and white bands so that sailors can tell it apart from the plain white tower at Carrow Point by day.",
            "The heritage trust plans to repaint the bands next spring and to reopen the keepers' cottages as a small museum of coastal life.",
        ],
    },
    {
        "slug": "tram-line-extension",
        "layout": "news",
        "title": "City council approves the eastern tram extension",
        "paragraphs": [
            "The council voted 31 to 12 on Tuesday night to extend the number 4 tram line by 6.8 kilometres to the new hospital at Eastfield.",
            "Construction of the nine new stops is due to start in April and will close Harbour Road to cars for about fourteen months.",
            "Engineers chose a grass track bed for most of the route, which absorbs rain water and lowers the noise of passing trams by a few decibels.",
            "The first passengers are expected to ride to Eastfield in the autumn of 2027, if the tender for the rails is awarded before the summer.",
        ],
    },
    {
        "slug": "sourdough-diary",
        "layout": "blog",
        "title": "What a year of sourdough taught me about patience",
        "paragraphs": [
            "My starter, which I named Ferdinand, was born from rye flour and tap water on a cold January morning and nearly died twice before February.",
            "The biggest change came when I stopped following the clock and started watching the dough: a bulk ferment at 24 degrees can take five hours or nine.",
            "I now keep the starter in the fridge and feed it once a week, one part starter to five parts flour and five parts water, the night before I bake.",
            "If you only remember one thing, let it be this: a dense loaf is almost always an under-proofed loaf, not a failed starter.",
        ],
    },
    {
        "slug": "alpine-hut-trek",
        "layout": "blog",
        "title": "Five days between alpine huts with a fifteen litre pack",
        "paragraphs": [
            "We started in the village of Oberwald at 7 a.m., carrying nothing but a fifteen litre pack each, a rain shell and a sleeping bag liner.",
            "The second stage crosses the Gorner ridge at 2,870 metres, and the snowfield below the pass was still frozen hard when we reached it at nine.",
            "Every hut served a three course dinner, so we never carried a stove; water came from the hut taps, which the wardens fill from snowmelt.",
            "On the last morning the clouds lifted over the glacier and we walked down to the railway station in shirt sleeves, tired and very happy.",
        ],
    },
    {
        "slug": "grey-heron",
        "layout": "reference",
        "title": "Grey heron",
        "paragraphs": [
            "The grey heron is a long-legged wading bird of the heron family, common across temperate Europe and Asia and parts of Africa.",
            "Adults stand up to a metre tall and have a white head with a broad black stripe running from the eye to the back of the crest.",
            "It hunts by standing motionless in shallow water and stabbing fish, frogs and small mammals with a swift thrust of its dagger-like bill.",
            "Grey herons nest in colonies called heronries, usually high in trees, and the same sites may be used for decades.",
        ],
        "infobox": [("Order", "Pelecaniformes"), ("Wingspan", "155 to 195 cm"), ("Weight", "1 to 2 kg")],
    },
    {
        "slug": "saltmarsh-mill",
        "layout": "reference",
        "title": "Saltmarsh tide mill",
        "paragraphs": [
            "The Saltmarsh tide mill is a water mill on the estuary of the river Lunn, driven by sea water stored in a pond at high tide.",
            "The present building dates from 1793 and replaced a timber mill recorded in the manor rolls as early as 1170.",
            "At its busiest the mill ground about twelve tonnes of wheat a week, working two tides a day whatever the hour.",
            "Milling stopped in 1938; the restored wheel was turned again in 2004 and now runs on open days in the summer.",
        ],
        "infobox": [("Built", "1793"), ("Type", "Tide mill"), ("Wheel diameter", "5.5 m")],
    },
    {
        "slug": "lemon-barley-water",
        "layout": "recipe",
        "title": "Old-fashioned lemon barley water",
        "paragraphs": [
            "This is the drink my grandmother made every July, when the allotment was too hot to work after eleven in the morning.",
            "Pearl barley gives the water a soft, slightly silky body that no cordial from a bottle can match.",
            "The barley water keeps for three days in the fridge; shake the jug before pouring because the starch settles.",
        ],
        "ingredients": ["100 g pearl barley", "2 unwaxed lemons", "1.2 litres water", "3 tablespoons honey"],
        "steps": [
            "Rinse the barley in a sieve until the water runs clear.",
            "Simmer the barley with the lemon zest for 25 minutes.",
            "Strain, stir in the honey and the lemon juice, and leave to cool.",
        ],
    },
    {
        "slug": "spiced-lentil-soup",
        "layout": "recipe",
        "title": "Spiced red lentil soup",
        "paragraphs": [
            "A pot of this soup costs less than a cup of coffee and is ready in the time it takes to lay the table.",
            "Red lentils collapse as they cook, so the soup thickens on its own without any cream or flour.",
            "A spoon of yoghurt and a pinch of chilli flakes on top turn a weekday lunch into something special.",
        ],
        "ingredients": ["250 g red lentils", "1 onion", "2 teaspoons ground cumin", "1 litre vegetable stock"],
        "steps": [
            "Soften the chopped onion in olive oil for eight minutes.",
            "Add the cumin and the lentils and stir for one minute.",
            "Pour in the stock and simmer for 20 minutes, then blend until smooth.",
        ],
    },
    {
        "slug": "config-reference",
        "layout": "docs",
        "title": "Configuring the sync daemon",
        "paragraphs": [
            "The sync daemon reads its settings from a TOML file given with the --config option, and from environment variables that override it.",
            "Set max_parallel_uploads to limit how many files are sent at once; the default of four suits most home connections.",
            "When retry_backoff_s is set, a failed upload waits that many seconds before the first retry and doubles the wait after each failure.",
            "Changes to the file are picked up on the next restart; send SIGHUP to reload the settings without dropping open transfers.",
        ],
        "code": 'max_parallel_uploads = 4\nretry_backoff_s = 2.5\nwatch = ["~/Documents", "~/Pictures"]',
    },
    {
        "slug": "cli-quickstart",
        "layout": "docs",
        "title": "Quick start: your first backup",
        "paragraphs": [
            "Install the command line tool with your package manager, then run the init command in the folder you want to protect.",
            "The init command creates a hidden vault folder that holds the encrypted chunks and an index of every file version.",
            "Run the snapshot command whenever you want a restore point; unchanged files cost no extra space because chunks are shared.",
            "To restore a single file, pass its path and the snapshot number to the restore command, and the file is written beside the original.",
        ],
        "code": "vault init\nvault snapshot --note 'before upgrade'\nvault restore notes.txt --snapshot 12",
    },
]

BOILERPLATE = {
    "cookie": "We use cookies to improve your experience. By continuing you accept our cookie policy.",
    "newsletter": "Sign up for our weekly newsletter and never miss a story",
    "ad": "Sponsored: Refinance your home today with rates from 3.9 percent",
    "related": "You may also like: The ten best seaside walks this summer",
    "comment": "First! Great write-up, I shared it with my whole family",
    "footer": "All rights reserved. Registered office: 12 Quay Street",
    "share": "Share this on Facebook, Twitter and WhatsApp",
    "login": "Log in or create an account to save your favourites",
}


def esc(text: str) -> str:
    return html.escape(text, quote=False)


def chrome_head(title: str) -> str:
    css = "\n".join(f".c{i}{{margin:{i}px;padding:{i % 7}px;color:#{i * 9973 % 0xFFFFFF:06x}}}" for i in range(400))
    script = "\n".join(
        f"window.__cfg{i}={{id:{i},flag:{str(i % 2 == 0).lower()},name:'widget-{i}'}};" for i in range(300)
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)} | Example Media</title>"
        f"<meta name='viewport' content='width=device-width'><style>{css}</style><script>{script}</script></head>"
    )


def menu() -> str:
    sections = ["News", "Sport", "Business", "Culture", "Travel", "Food", "Science", "Opinion", "Video", "Podcasts"]
    items = "".join(
        f"<li><a href='/{s.lower()}'>{s}</a><ul>{''.join(f'<li><a href=/{s.lower()}/{i}>{s} topic {i}</a></li>' for i in range(8))}</ul></li>"
        for s in sections
    )
    return f"<header class='site-header'><div class='logo'>Example Media</div><nav id='main-nav'><ul>{items}</ul></nav></header>"


def footer() -> str:
    cols = "".join(
        f"<div class='col'><h4>Column {c}</h4><ul>{''.join(f'<li><a href=/f/{c}/{i}>Footer link {c}.{i}</a></li>' for i in range(10))}</ul></div>"
        for c in range(4)
    )
    return f"<footer class='site-footer'>{cols}<p>{BOILERPLATE['footer']}</p></footer>"


def paragraphs(topic: dict) -> str:
    return "".join(f"<p>{esc(p)}</p>" for p in topic["paragraphs"])


def news(topic: dict) -> str:
    return (
        f"{chrome_head(topic['title'])}<body><div class='cookie-banner'>{BOILERPLATE['cookie']}</div>{menu()}"
        f"<div class='ad-slot leaderboard'><a href='/ad'>{BOILERPLATE['ad']}</a></div>"
        f"<main><article><h1>{esc(topic['title'])}</h1><p class='byline'>By Staff Reporter, 3 June 2024</p>"
        f"{paragraphs(topic)}<div class='share'>{BOILERPLATE['share']}</div></article>"
        f"<aside class='related'><h3>Related</h3><ul><li><a href='/r1'>{BOILERPLATE['related']}</a></li></ul></aside>"
        f"<section class='comments'><h3>12 comments</h3><div class='comment'><p>{BOILERPLATE['comment']}</p></div></section>"
        f"<div class='newsletter'>{BOILERPLATE['newsletter']}</div></main>{footer()}</body></html>"
    )


def blog(topic: dict) -> str:
    body = "".join(f"<div class='para'>{esc(p)}</div>" for p in topic["paragraphs"])
    return (
        f"{chrome_head(topic['title'])}<body><div id='wrapper'><div class='cookie-notice'>{BOILERPLATE['cookie']}</div>{menu()}"
        f"<div class='container'><div class='sidebar widget-area'><div class='widget'><h3>About me</h3>"
        f"<p>{BOILERPLATE['newsletter']}</p></div><div class='widget'><a href='/ad'>{BOILERPLATE['ad']}</a></div></div>"
        f"<div class='post'><h2 class='post-title'>{esc(topic['title'])}</h2><div class='entry-content'>{body}</div>"
        f"<div class='share-buttons'>{BOILERPLATE['share']}</div>"
        f"<div class='post-nav'><a href='/prev'>{BOILERPLATE['related']}</a></div>"
        f"<div id='comments'><ol class='comment-list'><li class='comment'>{BOILERPLATE['comment']}</li></ol></div>"
        f"</div></div></div>{footer()}</body></html>"
    )


def reference(topic: dict) -> str:
    box = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in topic["infobox"])
    sections = ["Description", "Behaviour", "History"]
    body = f"<p>{esc(topic['paragraphs'][0])}</p>" + "".join(
        f"<h2>{sections[(i - 1) % 3]}<span class='edit'>[edit]</span></h2><p>{esc(p)}</p>"
        for i, p in enumerate(topic["paragraphs"][1:], 1)
    )
    navbox = "".join(f"<a href='/wiki/{i}'>Related entry {i}</a> · " for i in range(40))
    return (
        f"{chrome_head(topic['title'])}<body>{menu()}<div id='content'><h1 id='firstHeading'>{esc(topic['title'])}</h1>"
        f"<div id='siteSub'>From the free encyclopedia</div><table class='infobox'>{box}</table>{body}"
        f"<div class='navbox'>{navbox}</div></div><div id='login'>{BOILERPLATE['login']}</div>{footer()}</body></html>"
    )


def recipe(topic: dict) -> str:
    ingredients = "".join(f"<li>{esc(i)}</li>" for i in topic["ingredients"])
    steps = "".join(f"<li>{esc(s)}</li>" for s in topic["steps"])
    intro = f"<p>{esc(topic['paragraphs'][0])}</p><div class='ad-inline'>{BOILERPLATE['ad']}</div><p>{esc(topic['paragraphs'][1])}</p>"
    return (
        f"{chrome_head(topic['title'])}<body><div class='cookie-banner'>{BOILERPLATE['cookie']}</div>{menu()}"
        f"<main><article class='recipe'><h1>{esc(topic['title'])}</h1><a class='jump' href='#recipe'>Jump to recipe</a>{intro}"
        f"<div id='recipe'><h2>Ingredients</h2><ul class='ingredients'>{ingredients}</ul>"
        f"<h2>Method</h2><ol class='steps'>{steps}</ol></div><p>{esc(topic['paragraphs'][2])}</p></article>"
        f"<div class='newsletter-box'>{BOILERPLATE['newsletter']}</div>"
        f"<section class='comments'><div class='comment'>{BOILERPLATE['comment']}</div></section></main>{footer()}</body></html>"
    )


def docs(topic: dict) -> str:
    tree = "".join(f"<li><a href='/docs/{i}'>Guide page {i}</a></li>" for i in range(60))
    body = "".join(f"<p>{esc(p)}</p>" for p in topic["paragraphs"][:2])
    body += f"<pre><code>{esc(topic['code'])}</code></pre>"
    body += "".join(f"<p>{esc(p)}</p>" for p in topic["paragraphs"][2:])
    return (
        f"{chrome_head(topic['title'])}<body>{menu()}<div class='docs-layout'><nav class='docs-sidebar'><ul>{tree}</ul></nav>"
        f"<main class='docs-content'><h1>{esc(topic['title'])}</h1>{body}"
        f"<div class='feedback'>Was this page helpful? {BOILERPLATE['login']}</div></main></div>{footer()}</body></html>"
    )


LAYOUTS = {"news": news, "blog": blog, "reference": reference, "recipe": recipe, "docs": docs}
DROPS = {
    "news": ["cookie", "ad", "related", "comment", "newsletter", "footer"],
    "blog": ["cookie", "ad", "newsletter", "related", "comment", "footer"],
    "reference": ["login", "footer"],
    "recipe": ["cookie", "ad", "newsletter", "comment", "footer"],
    "docs": ["login", "footer"],
}


def keeps(topic: dict) -> list[str]:
    ps = topic["paragraphs"]
    out = [ps[0], ps[len(ps) // 2], ps[-1]]
    out += topic.get("ingredients", [])[:2] + topic.get("steps", [])[-1:]
    return out


def build_pages(out: Path) -> dict[str, dict]:
    """Write the pages and ``annotations.json`` into ``out``; return the annotations."""
    out.mkdir(parents=True, exist_ok=True)
    annotations = {}
    for topic in TOPICS:
        name = f"{topic['slug']}.html"
        (out / name).write_text(LAYOUTS[topic["layout"]](topic), encoding="utf-8")
        annotations[name] = {
            "layout": topic["layout"],
            "keep": keeps(topic),
            "drop": [BOILERPLATE[k] for k in DROPS[topic["layout"]]] + ["Footer link 2.3", "Example Media"],
        }
    (out / "annotations.json").write_text(
        json.dumps(annotations, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return annotations


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "browse-pages")
    build_pages(target)
    print(f"wrote {len(TOPICS)} pages and annotations.json to {target}")
