"""The interaction record: what callqa writes for every call or conversation (``record``), its
utterances and words (``utterances``), and the files written from it (``writers``)."""
