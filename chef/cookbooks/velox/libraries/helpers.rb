require 'json'
require 'yaml'

module VeloxCookbook
  # Seconds in a Go duration such as "90s", "5m" or "1h30m".
  def self.duration_seconds(text)
    units = { 'ms' => 0.001, 's' => 1, 'm' => 60, 'h' => 3600 }
    s = text.to_s
    parts = s.scan(/(\d+(?:\.\d+)?)(ms|s|m|h)/)
    raise ArgumentError, "#{s.inspect} is not a Go duration" if parts.empty? || parts.join != s.delete(' ')
    parts.sum { |n, u| n.to_f * units[u] }.ceil
  end

  # Secrets from the data bag item named in node['velox']['secrets'], over
  # the development fallback node['velox']['secrets']['values'].
  def self.secrets(recipe, item_attr = 'data_bag_item')
    conf = recipe.node['velox']['secrets']
    values = plain(conf['values'] || {})
    if conf['data_bag'] && conf[item_attr]
      # Chef decrypts encrypted items with the node's secret file.
      values = values.merge(plain(recipe.data_bag_item(conf['data_bag'], conf[item_attr]).to_hash))
    end
    values.delete('id')
    values
  end

  # Plain hashes and arrays, without Chef's attribute classes (which YAML
  # would tag).
  def self.plain(value)
    JSON.parse(JSON.generate(value))
  end

  module TemplateHelpers
    # A value as YAML: JSON scalars and flow lists are valid YAML.
    def y(value)
      JSON.generate(VeloxCookbook.plain(value))
    end

    # value as an indented YAML block, for nested maps and lists.
    def yaml_block(value, indent)
      VeloxCookbook.plain(value).to_yaml.sub(/\A---\s*\n/, '').gsub(/^/, ' ' * indent).rstrip
    end
  end
end
