"""Dataset export without a database: votes in, trainer-ready JSONL out (votes, trl, openai,
hh-rlhf, kto). The repository yields `VoteRecord`s or `PairVotes` sorted by (prompt external
id, pair id, judgment id); everything here streams them."""
