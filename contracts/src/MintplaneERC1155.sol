// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";
import {ERC1155Supply} from "@openzeppelin/contracts/token/ERC1155/extensions/ERC1155Supply.sol";

/// @title MintplaneERC1155
/// @notice The ERC-1155 collection contract mintplane's orchestrator deploys for creators.
/// @dev Owner-only minting with an optional per-id supply cap, ERC-2981 default royalty, per-id and
///      total supply (ERC1155Supply), and the ERC-1155 `{id}` URI template. `name`/`symbol` are not part
///      of ERC-1155 but marketplaces display them, and they keep the constructor shape of MintplaneERC721.
///      OpenZeppelin emits `TransferSingle` when a batch holds exactly one id, `TransferBatch` otherwise.
contract MintplaneERC1155 is ERC1155Supply, ERC2981, Ownable {
    /// @notice Maximum units that can ever be minted of each token id; 0 means unlimited.
    uint256 public immutable maxSupply;

    string private _name;
    string private _symbol;

    /// @notice Minting would take the supply of token `id` past `maxSupply` (`supply` is the would-be total).
    error MaxSupplyExceeded(uint256 id, uint256 maxSupply, uint256 supply);

    /// @param name_ Collection name.
    /// @param symbol_ Collection symbol.
    /// @param uri_ ERC-1155 metadata URI template (clients substitute `{id}`); may be empty.
    /// @param maxSupply_ Cap on minted units per token id; 0 for unlimited.
    /// @param royaltyReceiver Default royalty receiver; with `royaltyBps == 0` and the zero address, no royalty.
    /// @param royaltyBps Default royalty in basis points (at most 10000).
    /// @param initialOwner Owner allowed to mint and to change the URI and royalty.
    constructor(
        string memory name_,
        string memory symbol_,
        string memory uri_,
        uint256 maxSupply_,
        address royaltyReceiver,
        uint96 royaltyBps,
        address initialOwner
    ) ERC1155(uri_) Ownable(initialOwner) {
        _name = name_;
        _symbol = symbol_;
        maxSupply = maxSupply_;
        if (royaltyReceiver != address(0) || royaltyBps != 0) {
            _setDefaultRoyalty(royaltyReceiver, royaltyBps);
        }
    }

    function name() external view returns (string memory) {
        return _name;
    }

    function symbol() external view returns (string memory) {
        return _symbol;
    }

    /// @notice Mints `amount` units of `id` to `to` (emits `TransferSingle`).
    function mint(address to, uint256 id, uint256 amount, bytes calldata data) external onlyOwner {
        _mint(to, id, amount, data);
    }

    /// @notice Mints `amounts[i]` units of `ids[i]` to `to` (emits `TransferBatch`, or `TransferSingle` for one id).
    function mintBatch(
        address to,
        uint256[] calldata ids,
        uint256[] calldata amounts,
        bytes calldata data
    ) external onlyOwner {
        _mintBatch(to, ids, amounts, data);
    }

    /// @notice Replaces the URI template of every token.
    function setURI(string calldata uri_) external onlyOwner {
        _setURI(uri_);
    }

    /// @notice Replaces the default ERC-2981 royalty.
    function setDefaultRoyalty(address receiver, uint96 royaltyBps) external onlyOwner {
        _setDefaultRoyalty(receiver, royaltyBps);
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC1155, ERC2981) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    /// @dev Enforces the per-id cap after ERC1155Supply has counted the minted units.
    function _update(
        address from,
        address to,
        uint256[] memory ids,
        uint256[] memory values
    ) internal override {
        super._update(from, to, ids, values);
        uint256 cap = maxSupply;
        if (from == address(0) && cap != 0) {
            for (uint256 i = 0; i < ids.length; ++i) {
                uint256 supply = totalSupply(ids[i]);
                if (supply > cap) revert MaxSupplyExceeded(ids[i], cap, supply);
            }
        }
    }
}
