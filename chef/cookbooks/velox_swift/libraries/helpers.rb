require 'json'

module VeloxSwiftCookbook
  RINGS = %w(account container object).freeze

  # Secrets from the data bag item named in node['velox_swift']['secrets'],
  # over the development fallback ['values'].
  def self.secrets(recipe)
    conf = recipe.node['velox_swift']['secrets']
    values = plain(conf['values'] || {})
    if conf['data_bag'] && conf['data_bag_item']
      # Chef decrypts encrypted items with the node's secret file.
      values = values.merge(plain(recipe.data_bag_item(conf['data_bag'], conf['data_bag_item']).to_hash))
    end
    values.delete('id')
    values
  end

  def self.plain(value)
    JSON.parse(JSON.generate(value))
  end

  # The swift.conf hash path secret: required, and the same everywhere.
  def self.hash_path(recipe)
    s = secrets(recipe)
    prefix, suffix = s['hash_path_prefix'], s['hash_path_suffix']
    if prefix.to_s.empty? || suffix.to_s.empty?
      raise 'velox_swift: hash_path_prefix and hash_path_suffix are required secrets ' \
            '(the same on every node of the cluster, never changed once data is stored)'
    end
    [prefix, suffix]
  end

  # The ring spec velox-swift-rings reads, from node['velox_swift']['rings'].
  def self.ring_spec(node)
    r = node['velox_swift']['rings']
    st = node['velox_swift']['storage']
    nodes = plain(r['nodes'])
    raise "velox_swift::rings: node['velox_swift']['rings']['nodes'] lists no storage node" if nodes.empty?
    rings = RINGS.map do |ring|
      devs = nodes.flat_map do |n|
        raise "velox_swift::rings: a node has no ip: #{n.inspect}" unless n['ip']
        (n['devices'] || {}).map do |dev, weight|
          { 'region' => n['region'] || 1, 'zone' => n['zone'] || 1, 'ip' => n['ip'],
            'port' => n["#{ring}_port"] || st["#{ring}_port"], 'device' => dev, 'weight' => weight }
        end
      end
      [ring, devs]
    end
    { 'part_power' => r['part_power'], 'replicas' => r['replicas'],
      'min_part_hours' => r['min_part_hours'], 'rings' => rings.to_h }
  end
end
