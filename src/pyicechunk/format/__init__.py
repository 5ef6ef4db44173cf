"""The on-disk format: pure codecs of every Icechunk object, without I/O.

Binary objects are a 39-byte header and a zstd-compressed flatbuffer (:mod:`.header`); the
header's spec byte says which layout the flatbuffer has. :func:`.header.open_object` returns
that byte with the content, and each object's codec takes it:

* :mod:`.snapshot`, :mod:`.manifest`, :mod:`.transaction_log`: one package per object, each
  with its model, its codec and a ``v2`` module holding what spec 2 adds or changes;
* :mod:`.repo_info`: the spec-2 ``repo`` object (model, codec, pure edits);
* :mod:`.flatbuf`: the flatbuffer toolkit they are all written with (builder, table reader,
  vectorised column reader, layout arithmetic); :mod:`.flexbuffers` for spec-2 values;
* :mod:`.metadata_items`: the ``[MetadataItem]`` vectors snapshots and the repo share;
* text and JSON objects: :mod:`.refs` (spec-1 ref files), :mod:`.config_yaml` (spec-1
  ``config.yaml``) and :mod:`.config_flex` (the spec-2 config FlexBuffer) over the shared
  config schema of :mod:`.config_serde`;
* :mod:`.ids`, :mod:`.zarr_metadata`, :mod:`.arrays`: ids, the Zarr metadata a snapshot
  records, numpy array types.
"""
