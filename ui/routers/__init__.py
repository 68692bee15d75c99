"""The UI's HTTP routes: the JSON API (map, flows, cluster) and the page."""
