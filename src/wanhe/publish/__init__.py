"""Publishing finished work to a studio's production tracker (Kitsu): docs/kitsu.md."""
