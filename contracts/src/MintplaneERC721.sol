// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title MintplaneERC721
/// @notice The ERC-721 collection contract mintplane's orchestrator deploys for creators.
/// @dev Owner-only minting with an optional supply cap, ERC-2981 default royalty, and
///      `tokenURI = baseURI + tokenId` unless the owner set a URI of its own for that token (`setTokenURI`,
///      e.g. on-chain `data:` metadata; announced with ERC-4906 `MetadataUpdate`). There is no burn, so
///      `totalSupply` is the number minted.
///      `mintBatch` emits one standard `Transfer` per token (not EIP-2309 `ConsecutiveTransfer`),
///      so indexers that only know ERC-721 `Transfer` see every token.
contract MintplaneERC721 is ERC721, ERC2981, Ownable {
    /// @notice Maximum number of tokens that can ever be minted; 0 means unlimited.
    uint256 public immutable maxSupply;

    uint256 private _totalSupply;
    string private _baseTokenURI;
    mapping(uint256 tokenId => string) private _tokenURIs;

    /// @notice Minting `requested` more tokens would take the supply past `maxSupply`.
    error MaxSupplyExceeded(uint256 maxSupply, uint256 totalSupply, uint256 requested);

    /// @notice `mintBatch` was called with `count == 0`.
    error EmptyBatch();

    /// @notice The base URI changed (ERC-4906 style hint for metadata caches).
    event BaseURIUpdated(string baseURI);

    /// @notice ERC-4906: the metadata of `_tokenId` changed (its own URI was set).
    event MetadataUpdate(uint256 _tokenId);

    /// @param name_ Collection name.
    /// @param symbol_ Collection symbol.
    /// @param baseURI_ Prefix of every token URI (`tokenURI(id) = baseURI_ + id`); may be empty.
    /// @param maxSupply_ Cap on minted tokens; 0 for unlimited.
    /// @param royaltyReceiver Default royalty receiver; with `royaltyBps == 0` and the zero address, no royalty.
    /// @param royaltyBps Default royalty in basis points (at most 10000).
    /// @param initialOwner Owner allowed to mint and to change the base URI and royalty.
    constructor(
        string memory name_,
        string memory symbol_,
        string memory baseURI_,
        uint256 maxSupply_,
        address royaltyReceiver,
        uint96 royaltyBps,
        address initialOwner
    ) ERC721(name_, symbol_) Ownable(initialOwner) {
        _baseTokenURI = baseURI_;
        maxSupply = maxSupply_;
        if (royaltyReceiver != address(0) || royaltyBps != 0) {
            _setDefaultRoyalty(royaltyReceiver, royaltyBps);
        }
    }

    /// @notice Number of tokens in existence.
    function totalSupply() external view returns (uint256) {
        return _totalSupply;
    }

    /// @notice Mints `tokenId` to `to` without the receiver check.
    function mint(address to, uint256 tokenId) external onlyOwner {
        _reserve(1);
        _mint(to, tokenId);
    }

    /// @notice Mints `tokenId` to `to`, requiring contract receivers to accept it (ERC721Receiver).
    function safeMint(address to, uint256 tokenId) external onlyOwner {
        _reserve(1);
        _safeMint(to, tokenId);
    }

    /// @notice Mints token ids `startTokenId .. startTokenId + count - 1` to `to`, one `Transfer` each.
    function mintBatch(address to, uint256 startTokenId, uint256 count) external onlyOwner {
        if (count == 0) revert EmptyBatch();
        _reserve(count);
        uint256 end = startTokenId + count;
        for (uint256 tokenId = startTokenId; tokenId < end; ) {
            _mint(to, tokenId);
            unchecked {
                ++tokenId;
            }
        }
    }

    /// @notice Replaces the base URI of every token.
    function setBaseURI(string calldata baseURI_) external onlyOwner {
        _baseTokenURI = baseURI_;
        emit BaseURIUpdated(baseURI_);
    }

    /// @notice Gives `tokenId` a URI of its own (a full URI such as `data:application/json;base64,...`, not
    ///         appended to the base URI); an empty `uri` returns the token to `baseURI + tokenId`.
    function setTokenURI(uint256 tokenId, string calldata uri) external onlyOwner {
        _requireOwned(tokenId);
        _tokenURIs[tokenId] = uri;
        emit MetadataUpdate(tokenId);
    }

    /// @notice The token's own URI when one was set, else `baseURI + tokenId` (empty without a base URI).
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        string memory own = _tokenURIs[tokenId];
        return bytes(own).length > 0 ? own : super.tokenURI(tokenId);
    }

    /// @notice Replaces the default ERC-2981 royalty.
    function setDefaultRoyalty(address receiver, uint96 royaltyBps) external onlyOwner {
        _setDefaultRoyalty(receiver, royaltyBps);
    }

    /// @dev ERC-4906 (metadata update events) is announced as its standard asks: interface id 0x49064906.
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, ERC2981) returns (bool) {
        return interfaceId == bytes4(0x49064906) || super.supportsInterface(interfaceId);
    }

    function _baseURI() internal view override returns (string memory) {
        return _baseTokenURI;
    }

    /// @dev Counts `count` new tokens against the cap before they are minted.
    function _reserve(uint256 count) private {
        uint256 supply = _totalSupply;
        uint256 cap = maxSupply;
        if (cap != 0 && count > cap - supply) revert MaxSupplyExceeded(cap, supply, count);
        _totalSupply = supply + count;
    }
}
