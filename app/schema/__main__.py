"""``python -m app.schema > schema.graphql``: print the SDL."""

import sys

from app.schema import sdl

sys.stdout.write(sdl())
