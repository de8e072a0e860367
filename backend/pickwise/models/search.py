"""The texts the pairs explorer searches, as Postgres expressions: one definition for the
full-text indexes (models, migration) and for the queries, which must spell an index's
expression the same way to use it.

The `simple` configuration lower-cases words and keeps every one of them (no stemming, no
stop words): prompts and answers come in many languages and hold code, where an English
stemmer would make matches hard to predict. docs/review.md says why full-text search and not
trigrams.
"""

SEARCH_CONFIG = "'simple'::regconfig"


def prompt_document(alias: str = "") -> str:
    """A prompt's system prompt and the contents of its turns (not their roles)."""
    prefix = f"{alias}." if alias else ""
    return (
        f"(to_tsvector({SEARCH_CONFIG}, COALESCE({prefix}system, ''::text)) || "
        f"jsonb_to_tsvector({SEARCH_CONFIG}, jsonb_path_query_array({prefix}turns, "
        "'$[*].\"content\"'::jsonpath), '[\"string\"]'::jsonb))"
    )


def text_document(column: str) -> str:
    """One text column: a response's content (kept as `responses.search_vector`), a
    judgment's rationale."""
    return f"to_tsvector({SEARCH_CONFIG}, {column})"


def response_document(alias: str) -> str:
    """A response's content, as its stored column (what `ix_responses_search` indexes; NULL
    for an imported answer the search catch-up has not reached yet)."""
    return f"{alias}.search_vector"


def response_words(alias: str) -> str:
    """A response's words whether or not the catch-up has stored them yet: for a test of
    one answer, not for an index lookup."""
    return f"COALESCE({alias}.search_vector, {text_document(f'{alias}.content')})"
