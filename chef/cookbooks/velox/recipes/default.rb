#
# Recipe:: velox::default
#
# An app node; see velox::app.
include_recipe 'velox::app'
